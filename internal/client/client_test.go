package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/protocol"
	"github.com/cis490/cis490/internal/testpki"
)

// These tests use a scripted httptest server, not the real receiver: they are about
// how the client reacts to failures (5xx bursts, 429 with Retry-After, dropped
// connections) that a healthy receiver cannot be made to produce on demand. The real
// receiver is exercised through the transport in internal/e2e.

func testConfig(t *testing.T, url string) config.Config {
	cfg := config.Default()
	cfg.Host = "lab-07"
	cfg.Receiver.URL = url
	cfg.Receiver.Timeout = 2 * time.Second
	cfg.Ship.Retries = 3
	return cfg
}

func newTestClient(t *testing.T, cfg config.Config) *Client {
	t.Helper()
	c, err := New(cfg, Options{Retries: -1, Logger: zerolog.New(zerolog.NewTestWriter(t)), InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	require.NoError(t, err)
	return c
}

func bodyOf(data []byte) func() (io.ReadCloser, int64, error) {
	return func() (io.ReadCloser, int64, error) {
		return io.NopCloser(bytes.NewReader(data)), int64(len(data)), nil
	}
}

func TestRetriesServerErrorsAndResendsTheWholeBody(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	var lastBody atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		lastBody.Store(string(b))
		if calls.Add(1) < 3 {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	c := newTestClient(t, testConfig(t, srv.URL))
	res, err := c.Do(context.Background(), Request{Method: http.MethodPut, Path: "/v1/episodes", Body: bodyOf([]byte("whole body"))})
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusCreated, res.StatusCode)
	assert.Equal(t, int32(3), calls.Load())
	assert.Equal(t, "whole body", lastBody.Load())
}

func TestGivesUpAfterRetriesAndReturnsTheLastAnswer(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInsufficientStorage)
		io.WriteString(w, `{"error":"disk full","code":"insufficient_storage"}`)
	}))
	defer srv.Close()
	c := newTestClient(t, testConfig(t, srv.URL))
	res, err := c.Do(context.Background(), Request{Method: http.MethodPost, Path: "/v1/heartbeat"})
	require.NoError(t, err)
	assert.Equal(t, int32(4), calls.Load(), "one attempt plus ship.retries")
	apiErr := c.StatusError(res)
	assert.Equal(t, "insufficient_storage", apiErr.Code)
	assert.Contains(t, apiErr.Error(), "disk full")
}

func TestClientErrorsAreNotRetried(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUpgradeRequired)
		io.WriteString(w, `{"error":"commit abc1234 is not on the allow-list","code":"commit_not_allowed","commit":"abc1234"}`)
	}))
	defer srv.Close()
	c := newTestClient(t, testConfig(t, srv.URL))
	c.commit = "abc1234"
	res, err := c.Do(context.Background(), Request{Method: http.MethodPost, Path: "/v1/heartbeat"})
	require.NoError(t, err)
	assert.Equal(t, int32(1), calls.Load())
	apiErr := c.StatusError(res)
	assert.Equal(t, http.StatusUpgradeRequired, apiErr.Status)
	assert.Contains(t, apiErr.Error(), "this build is commit abc1234")
}

func TestTooManyRequestsHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	var first time.Time
	var waited time.Duration
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			first = time.Now()
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		waited = time.Since(first)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	c := newTestClient(t, testConfig(t, srv.URL))
	res, err := c.Do(context.Background(), Request{Method: http.MethodPost, Path: "/v1/heartbeat"})
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusNoContent, res.StatusCode)
	assert.GreaterOrEqual(t, waited, 900*time.Millisecond, "waited as the receiver asked, not the 1 ms backoff")
}

func TestEveryRequestIsStamped(t *testing.T) {
	t.Parallel()
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	cfg := testConfig(t, srv.URL)
	cfg.Receiver.TokenFile = filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(cfg.Receiver.TokenFile, []byte("c490_secret\n"), 0o600))
	c := newTestClient(t, cfg)
	c.commit = "abcdef1234567"
	res, err := c.Do(context.Background(), Request{Method: http.MethodGet, Path: "/v1/whoami"})
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, "lab-07", got.Get(protocol.HeaderHost))
	assert.Equal(t, "abcdef1234567", got.Get(protocol.HeaderCommit))
	assert.Equal(t, "Bearer c490_secret", got.Get("Authorization"))
	assert.True(t, strings.HasPrefix(got.Get("User-Agent"), "cis490/"))
}

func TestUnreachableReceiverSaysWhatToCheck(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	cfg := testConfig(t, "http://"+addr)
	cfg.Ship.Retries = 2
	c := newTestClient(t, cfg)
	_, err = c.Do(context.Background(), Request{Method: http.MethodPost, Path: "/v1/heartbeat"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "http://"+addr+"/v1/heartbeat")
	assert.Contains(t, err.Error(), "connection refused")
	assert.Contains(t, err.Error(), "receiver.url")
}

func TestWrongCAIsNotRetriedAndNamesTheCAFile(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	defer srv.Close()
	other := testpki.NewCA(t, "not-the-fleet")
	cfg := testConfig(t, srv.URL)
	cfg.Receiver.CAFile = other.CertPEM
	c := newTestClient(t, cfg)
	start := time.Now()
	_, err := c.Do(context.Background(), Request{Method: http.MethodGet, Path: "/healthz"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "receiver.ca_file")
	assert.Contains(t, err.Error(), other.CertPEM)
	assert.Less(t, time.Since(start), time.Second, "a certificate problem is not retried")
	assert.Equal(t, int32(0), calls.Load())
}

func TestNewRejectsBadSettings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	for _, tc := range []struct {
		name string
		edit func(*config.Receiver)
		want string
	}{
		{"no url", func(r *config.Receiver) { r.URL = "" }, "receiver.url"},
		{"missing token file", func(r *config.Receiver) { r.TokenFile = filepath.Join(dir, "nope") }, "receiver.token_file"},
		{"empty token file", func(r *config.Receiver) { r.TokenFile = empty }, "expected one token"},
		{"missing ca", func(r *config.Receiver) { r.CAFile = filepath.Join(dir, "nope.pem") }, "receiver.ca_file"},
		{"not a pem", func(r *config.Receiver) { r.CAFile = empty }, "no PEM certificate"},
		{"half a key pair", func(r *config.Receiver) { r.CertFile = empty }, "go together"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, "https://pi.example:8490")
			tc.edit(&cfg.Receiver)
			_, err := New(cfg, Options{Retries: -1})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestRefusedClientCertificateIsNotRetriedAndNamesTheCertFile(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "fleet")
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Server("receiver").TLS}, ClientCAs: ca.Pool(), ClientAuth: tls.RequireAndVerifyClientCert}
	srv.StartTLS()
	defer srv.Close()
	expired := ca.ClientExpiring("lab-07", time.Now().Add(-time.Hour))
	cfg := testConfig(t, srv.URL)
	cfg.Receiver.CAFile, cfg.Receiver.CertFile, cfg.Receiver.KeyFile = ca.CertPEM, expired.CertFile, expired.KeyFile
	c := newTestClient(t, cfg)
	start := time.Now()
	_, err := c.Do(context.Background(), Request{Method: http.MethodGet, Path: "/healthz"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "refused the TLS handshake")
	assert.Contains(t, err.Error(), expired.CertFile)
	assert.Less(t, time.Since(start), time.Second, "a refused certificate is not retried")
}

func TestRetryAfterOnTheLastAttemptReturnsTheAnswer(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"error":"the receiver is shutting down: retry shortly","code":"shutting_down"}`)
	}))
	defer srv.Close()
	cfg := testConfig(t, srv.URL)
	cfg.Ship.Retries = 0
	c := newTestClient(t, cfg)
	res, err := c.Do(context.Background(), Request{Method: http.MethodPost, Path: "/v1/heartbeat"})
	require.NoError(t, err, "the receiver answered: that answer is the result, not a network error")
	assert.Equal(t, "shutting_down", c.StatusError(res).Code)
	assert.Equal(t, int32(1), calls.Load())
}

// A 403 on an admin route means "not an admin token", not "another host's": the hint
// says which token to use instead of blaming the host's names.
func TestForbiddenHintFitsTheRoute(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"error":"forbidden","code":"forbidden"}`)
	}))
	defer srv.Close()
	c := newTestClient(t, testConfig(t, srv.URL))
	for path, want := range map[string]string{
		"/v1/fleet":               "admin token",
		"/v1/silences/abc":        "admin token",
		"/v1/alerts?n=1":          "admin token",
		"/v1/host-health/lab-08":  "name the same host",
		"/v1/episodes":            "name the same host",
		"/v1/fleetish-not-admin":  "name the same host",
		"/v1/silencesX/something": "name the same host",
	} {
		res, err := c.Do(context.Background(), Request{Method: http.MethodGet, Path: path})
		require.NoError(t, err)
		assert.Contains(t, c.StatusError(res).Error(), want, path)
	}
}
