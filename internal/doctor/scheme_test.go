package doctor

import (
	"context"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/config"
)

// A receiver that serves TLS, asked over plain HTTP, answers with net/http's stock
// 400 "Client sent an HTTP request to an HTTPS server.": doctor names the fix
// instead of blaming the receiver's health.
func TestReceiverSpeaksHTTPSButURLSaysHTTP(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Error("no request should get through to the handler")
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // "TLS handshake error": expected here
	srv.StartTLS()
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()
	plain, fixed := "http://"+addr, "https://"+addr

	caFile := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))

	for _, tc := range []struct {
		name, caFile, hint string
	}{
		{"no ca_file", "", "and receiver.ca_file to the CA that signed the receiver's certificate"},
		{"ca_file set", caFile, "receiver.ca_file (" + caFile + ") must hold the CA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := config.Default()
			cfg.Host, cfg.Receiver.URL, cfg.Receiver.CAFile, cfg.Ship.SpoolDir = "lab-07", plain, tc.caFile, t.TempDir()
			cfg.Doctor.Timeout = 5 * time.Second
			r := Run(context.Background(), Options{Config: cfg, Logger: zerolog.New(zerolog.NewTestWriter(t)), SystemdDir: "/nonexistent"})
			checks := checksByID(r)

			c := checks["receiver-reachable"]
			require.Equal(t, Fail, c.Status, c.Summary)
			assert.Equal(t, plain+` speaks HTTPS, not plain HTTP: it answered 400 "Client sent an HTTP request to an HTTPS server."`, c.Summary)
			assert.Contains(t, c.Hint, `set receiver.url = "`+fixed+`" in lab-host.toml`)
			assert.Contains(t, c.Hint, tc.hint)
			assert.NotContains(t, c.Hint, "journalctl")
			assert.Equal(t, fixed, c.Details["suggested_url"])

			for _, id := range []string{"token", "commit-allowed", "clock-skew"} {
				assert.Equal(t, Skip, checks[id].Status, id)
				assert.Equal(t, wrongSchemeSkip, checks[id].Summary, id)
			}
		})
	}
}

func TestHTTPSURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"http://pi.lab:8490":       "https://pi.lab:8490",
		"http://10.0.0.2:8490/":    "https://10.0.0.2:8490/",
		"http://[::1]:8490/prefix": "https://[::1]:8490/prefix",
		"pi.lab:8490":              "https://…",
	} {
		assert.Equal(t, want, httpsURL(in), in)
	}
}
