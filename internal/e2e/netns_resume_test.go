package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The real `cis490 serve` on a Pi and the real `cis490 ship` on a lab host, in two
// network namespaces joined by a veth pair shaped to 50 Mbit/s each way with 1 % of
// the packets each end sends dropped (tbf and nftables). No delay is added: this
// kernel has no netem qdisc, and nothing else in it holds a packet back for a time,
// so the link's round trip is the veth's (well under a millisecond).
//
// During one ship of a 128 MiB episode the lab host's end goes down three times for
// 5 s, at 25, 50 and 75 % of the episode's size in bytes the lab end transmitted.
// The lab host's receiver.timeout is 3 s: shorter than a cut, so each cut ends the
// connection (its bytes unacknowledged that long: TCP_USER_TIMEOUT) and ship resumes;
// with the default 30 s TCP rides a 5 s cut out by itself and nothing is resumed or
// sent twice (bench/README.md).
//
// The episode must arrive intact, ship exit 0 having resumed at least three times,
// and the bytes sent twice be at most 5 % of the episode: measured on the receiver,
// the body bytes of every PUT index line of the episode (what the receiver read of
// each body) minus its size. The lab end's transmitted bytes, which also count TLS,
// HTTP/2, TCP and IP headers and retransmissions, are logged beside it.
func TestShipResumesOverACutLink(t *testing.T) {
	t.Parallel()
	const size = 128 << 20
	rig := startCutRig(t, RigOptions{Rate: "50mbit", LossPercent: 1, Timeout: "3s"})
	sha, err := rig.Drop("ep-big.tar", size)
	require.NoError(t, err)

	cuts, err := rig.CutPoints(size, 0.25, 0.50, 0.75)
	require.NoError(t, err)
	res, err := rig.Ship(cuts, 5*time.Second, 5*time.Minute)
	require.NoError(t, err, rig.ServeLog())
	require.Equal(t, 0, res.Code, "ship:\n%s\n%s", res.Stdout, res.Stderr)
	assert.Equal(t, 3, res.Cuts)
	assert.Contains(t, res.Stdout, "shipped 1,")
	assert.GreaterOrEqual(t, res.Resumed, 3, "a resume a cut at least: %s", res.Stdout)
	assert.Equal(t, sha, fileSum(t, filepath.Join(rig.Data, "episodes", "lab-07", sha)), "the stored episode is the file")

	got, puts, err := rig.PutBytes(sha)
	require.NoError(t, err)
	twice := got - size
	t.Logf("%d MiB over 50 Mbit/s, 1 %% loss, three 5 s cuts: %s, %d resumes, PUTs (status:bytes) %s, sent twice %d bytes (%.2f %% of the episode); "+
		"the lab end transmitted %d bytes (%.2f %% more than the episode: headers and retransmissions)",
		size>>20, res.Elapsed.Round(100*time.Millisecond), res.Resumed, strings.Join(puts, " "), twice, 100*float64(twice)/size,
		res.TxBytes, 100*float64(res.TxBytes-size)/size)
	assert.GreaterOrEqual(t, twice, int64(0))
	assert.LessOrEqual(t, twice, int64(size/20), "at most 5 %% of the episode sent twice")
}

// startCutRig is a CutRig removed when the test ends. Where namespaces cannot be
// made it fails under CI=true (which installs what it needs) and skips otherwise,
// saying why either way.
func startCutRig(t *testing.T, opts RigOptions) *CutRig {
	t.Helper()
	if err := LinkUnavailable(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cannot make the test's network namespaces: %v", err)
		}
		t.Skipf("cannot make the test's network namespaces: %v", err)
	}
	rig, err := StartCutRig(t.TempDir(), bin, opts)
	t.Cleanup(rig.Close)
	require.NoError(t, err)
	return rig
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	h := sha256.New()
	_, err = io.Copy(h, f)
	require.NoError(t, err)
	return hex.EncodeToString(h.Sum(nil))
}
