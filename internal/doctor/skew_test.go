package doctor

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/config"
)

// skewedReceiver is a fake receiver whose clock is off by skew. It has to be a fake:
// the real `cis490 serve` cannot be told to lie about the time, and moving this
// machine's clock would disturb everything else running on it. It answers what
// doctor asks, with the Date header net/http would otherwise set from the real clock.
func skewedReceiver(t *testing.T, skew time.Duration) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", time.Now().Add(skew).UTC().Format(http.TimeFormat))
		switch r.URL.Path {
		case "/healthz":
			_, _ = w.Write([]byte("ok\n"))
		case "/v1/whoami":
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"host": r.Header.Get("X-Cis490-Host"), "role": "open",
				"commit": "", "commit_allowed": true, "gate": "open", "version": "fake"})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func runAgainst(t *testing.T, url string) Report {
	t.Helper()
	cfg := config.Default()
	cfg.Host, cfg.Receiver.URL, cfg.Ship.SpoolDir = "lab-07", url, t.TempDir()
	cfg.Doctor.Timeout = 5 * time.Second
	return Run(context.Background(), Options{Config: cfg, Logger: zerolog.New(zerolog.NewTestWriter(t)), SystemdDir: "/nonexistent"})
}

func TestClockSkewAgainstTheReceiversDate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		skew    time.Duration
		status  Status
		summary string
	}{
		{"in sync", 0, OK, "within a second of the receiver's"},
		{"two minutes behind", 2 * time.Minute, Warn, "this host's clock is 2m0s behind the receiver's"},
		{"ten minutes behind", 10 * time.Minute, Fail, "10m0s behind"},
		{"ten minutes ahead", -10 * time.Minute, Fail, "10m0s ahead of"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := checksByID(runAgainst(t, skewedReceiver(t, tc.skew).URL))["clock-skew"]
			require.Equal(t, tc.status, c.Status, c.Summary)
			assert.Contains(t, c.Summary, tc.summary)
			assert.InDelta(t, tc.skew.Seconds(), c.Details["skew_seconds"], 2)
			if tc.status != OK {
				assert.Contains(t, c.Hint, "timedatectl set-ntp true")
			}
		})
	}
}

// The receiver checks share their requests: one /healthz and one /v1/whoami a run.
func TestReceiverChecksAskOnce(t *testing.T) {
	t.Parallel()
	calls := make(chan string, 100)
	fake := skewedReceiver(t, 0)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls <- r.URL.Path
		fake.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	r := runAgainst(t, srv.URL)
	for _, id := range []string{"receiver-reachable", "token", "commit-allowed", "clock-skew"} {
		assert.NotEqual(t, Fail, checksByID(r)[id].Status, id)
	}
	close(calls)
	var paths []string
	for p := range calls {
		paths = append(paths, p)
	}
	assert.ElementsMatch(t, []string{"/healthz", "/v1/whoami"}, paths)
}
