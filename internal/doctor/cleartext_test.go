package doctor

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/config"
)

// The transport refuses a token over plain http:// to an address that is not
// loopback (SPEC §3.1). doctor says so under receiver-reachable, with the URL to use,
// and skips what needs an answer: it neither crashes nor sends the token.
func TestAReceiverURLThatWouldSendTheTokenInClear(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.Host, cfg.Receiver.URL, cfg.Ship.SpoolDir = "lab-07", "http://lab-pi:8490", makeSpool(t, t.TempDir())
	cfg.Receiver.TokenFile = filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(cfg.Receiver.TokenFile, []byte("c490_secret\n"), 0o600))
	cfg.Doctor.Timeout = 5 * time.Second
	r := Run(context.Background(), Options{Config: cfg, Logger: zerolog.New(zerolog.NewTestWriter(t)), SystemdDir: "/nonexistent"})
	checks := checksByID(r)

	c := checks["receiver-reachable"]
	require.Equal(t, Fail, c.Status, c.Summary)
	assert.Contains(t, c.Summary, "receiver.url is http://lab-pi:8490 and a token is configured: refusing to send the token in clear; use https://lab-pi:8490")
	assert.Contains(t, c.Hint, `set receiver.url = "https://lab-pi:8490" in lab-host.toml`)
	assert.Equal(t, "https://lab-pi:8490", c.Details["suggested_url"])
	for _, id := range []string{"token", "commit-allowed", "clock-skew"} {
		assert.Equal(t, Skip, checks[id].Status, id)
	}
	assert.Equal(t, OK, checks["spool"].Status, checks["spool"].Summary)
}
