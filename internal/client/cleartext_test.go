package client

import (
	"context"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/testutil"
)

// SPEC §3.1: the client never sends a bearer token over plain http:// to an address
// that is not loopback. It refuses in New, before anything is dialled.

// tokenFile writes a token file and returns its path.
func tokenFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(path, []byte("c490_secret\n"), 0o600))
	return path
}

func TestRefusesATokenOverPlainHTTPToAnAddressThatIsNotLoopback(t *testing.T) {
	t.Parallel()
	for url, use := range map[string]string{
		"http://lab-pi:8490":           "https://lab-pi:8490",
		"http://lab-pi:8490/":          "https://lab-pi:8490/",
		"HTTP://lab-pi:8490":           "https://lab-pi:8490",
		"http://10.0.0.2:8490":         "https://10.0.0.2:8490",
		"http://[fd00::2]:8490":        "https://[fd00::2]:8490",
		"http://localhost.lab:8490":    "https://localhost.lab:8490",
		"http://127.0.0.1.nip.io:8490": "https://127.0.0.1.nip.io:8490",
		"http://0.0.0.0:8490":          "https://0.0.0.0:8490",
	} {
		t.Run(url, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t, "")
			cfg.Receiver.URL, cfg.Receiver.TokenFile = url, tokenFile(t)
			c, err := New(cfg, Options{Retries: -1})
			require.Error(t, err)
			assert.Nil(t, c)
			assert.True(t, errors.Is(err, ErrTokenInClear), "%v", err)
			assert.Contains(t, err.Error(), "receiver.url is "+url+" and a token is configured: refusing to send the token in clear; use "+use)
			assert.NotContains(t, err.Error(), "c490_secret")
		})
	}
	// The brief's example, word for word.
	cfg := testConfig(t, "")
	cfg.Receiver.URL, cfg.Receiver.TokenFile = "http://lab-pi:8490", tokenFile(t)
	_, err := New(cfg, Options{Retries: -1})
	require.Error(t, err)
	assert.Regexp(t, `^receiver\.url is http://lab-pi:8490 and a token is configured: refusing to send the token in clear; use https://lab-pi:8490\b`, err.Error())
}

func TestAllowsLoopbackHTTPOrNoTokenOrHTTPS(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url   string
		token bool
	}{
		{"http://127.0.0.1:8490", true},
		{"http://127.8.9.10:8490", true},
		{"http://[::1]:8490", true},
		{"http://localhost:8490", true},
		{"http://LocalHost:8490", true},
		{"http://lab-pi:8490", false},
		{"https://lab-pi:8490", true},
		{"https://10.0.0.2:8490", true},
	} {
		cfg := testConfig(t, tc.url)
		if tc.token {
			cfg.Receiver.URL, cfg.Receiver.TokenFile = tc.url, tokenFile(t)
		}
		_, err := New(cfg, Options{Retries: -1})
		assert.NoError(t, err, tc.url)
	}
}

// noConnectionBut proves that nothing connected to ln before this call: it connects
// once itself and accepts one connection, which must be its own (the kernel's accept
// queue is first in, first out).
func noConnectionBut(t *testing.T, ln net.Listener) {
	t.Helper()
	sentinel, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer sentinel.Close()
	got, err := ln.Accept()
	require.NoError(t, err)
	defer got.Close()
	assert.Equal(t, sentinel.LocalAddr().String(), got.RemoteAddr().String(), "something else connected to %s first", ln.Addr())
}

func TestRefusesBeforeDialling(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", net.JoinHostPort(testutil.NonLoopbackIPv4(t), "0"))
	require.NoError(t, err)
	defer ln.Close()
	cfg := testConfig(t, "")
	cfg.Receiver.URL, cfg.Receiver.TokenFile = "http://"+ln.Addr().String(), tokenFile(t)
	_, err = New(cfg, Options{Retries: -1})
	require.ErrorIs(t, err, ErrTokenInClear)
	noConnectionBut(t, ln)
}

// A redirect from https to plain http on another machine would carry the token in
// clear (net/http keeps Authorization for the same host name, whatever the scheme):
// it is not followed, and not retried.
func TestDoesNotFollowARedirectThatWouldSendTheTokenInClear(t *testing.T) {
	t.Parallel()
	ip := testutil.NonLoopbackIPv4(t)
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	require.NoError(t, err)
	defer ln.Close()
	target := "http://" + ln.Addr().String() + "/v1/whoami"

	var calls atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Redirect(w, r, target, http.StatusFound)
	}))
	// Listen on the same non-loopback address, so the redirect keeps the host name
	// and net/http would copy the token.
	srvLn, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	require.NoError(t, err)
	srv.Listener = srvLn
	srv.StartTLS()
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))

	cfg := testConfig(t, "")
	// httptest's certificate names 127.0.0.1 and example.com only: ServerName is
	// the one test-only knob that lets a non-loopback address pass verification.
	cfg.Receiver.URL, cfg.Receiver.TokenFile = srv.URL, tokenFile(t)
	cfg.Receiver.CAFile = caFile
	c := newTestClient(t, cfg)
	c.http.Transport.(*http.Transport).TLSClientConfig.ServerName = "example.com"

	_, err = c.Do(context.Background(), Request{Method: http.MethodGet, Path: "/v1/whoami"})
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrTokenInClear)
	assert.Contains(t, err.Error(), "redirected to "+target)
	assert.Contains(t, err.Error(), srv.URL+"/v1/whoami")
	assert.Equal(t, int32(1), calls.Load(), "not retried")
	noConnectionBut(t, ln)
}

// On loopback the token may go in clear, redirected or not.
func TestFollowsARedirectToLoopbackHTTP(t *testing.T) {
	t.Parallel()
	var auth atomic.Value
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth.Store(r.Header.Get("Authorization"))
		w.WriteHeader(http.StatusNoContent)
	}))
	defer plain.Close()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+"/v1/whoami", http.StatusFound)
	}))
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))
	cfg := testConfig(t, "")
	cfg.Receiver.URL, cfg.Receiver.TokenFile = srv.URL, tokenFile(t)
	cfg.Receiver.CAFile = caFile
	c := newTestClient(t, cfg)
	res, err := c.Do(context.Background(), Request{Method: http.MethodGet, Path: "/v1/whoami"})
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusNoContent, res.StatusCode)
	assert.Equal(t, "Bearer c490_secret", auth.Load())
}
