package e2e

import (
	"crypto/tls"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/ca"
)

// kill -9 at any moment of `cert renew`: the pair in place is always whole (the old
// one or the new one, never a key beside another key's certificate), and the next run
// renews and cleans up what the killed ones left. Both layouts: one file for the
// pair, and two files (symlinks switched by one rename).
func TestCertRenewSurvivesKill9(t *testing.T) {
	t.Parallel()
	p := startPiCA(t, "lab-07", "lab-08")
	for _, tc := range []struct{ host, cert, key string }{
		{"lab-07", "client.pem", "client.pem"},
		{"lab-08", "client.pem", "client-key.pem"},
	} {
		t.Run(tc.host, func(t *testing.T) {
			t.Parallel()
			h := p.host(t, tc.host, tc.cert, tc.key)
			start := time.Now()
			res := h.run(t, "cert", "renew")
			require.Equal(t, 0, res.Code, res.Stderr)
			took := time.Since(start)
			serials := map[string]bool{h.serial(t): true}

			kept, replaced := 0, 0
			for range 30 {
				before := h.serial(t)
				cmd := exec.Command(bin, "--config", h.cfg, "cert", "renew", "--force")
				cmd.Env = h.env
				require.NoError(t, cmd.Start())
				time.Sleep(time.Duration(rand.Int64N(int64(took))))
				_ = cmd.Process.Signal(syscall.SIGKILL)
				_ = cmd.Wait()

				pair, err := tls.LoadX509KeyPair(h.receiver["cert_file"], h.receiver["key_file"])
				require.NoError(t, err, "after a kill -9 the pair in place is whole")
				assert.Equal(t, tc.host, pair.Leaf.Subject.CommonName)
				now := ca.SerialString(pair.Leaf.SerialNumber)
				if now == before {
					kept++
				} else {
					replaced++
				}
				serials[now] = true
			}
			t.Logf("%s: 30 kills within %s runs: %d left the old pair, %d the new one", tc.host, took.Round(time.Millisecond), kept, replaced)

			res = h.run(t, "cert", "renew", "--force")
			require.Equal(t, 0, res.Code, res.Stderr)
			assert.False(t, serials[h.serial(t)], "a new pair")
			if tc.cert != tc.key {
				pairs := names(t, filepath.Join(h.dir, "."+tc.cert+".pairs"))
				assert.Len(t, pairs, 2, "current and the pair it names; the killed runs' are gone: %v", pairs)
			}
			for _, name := range names(t, h.dir) {
				assert.False(t, strings.HasPrefix(name, "."+tc.cert) && !strings.HasSuffix(name, ".lock") && !strings.HasSuffix(name, ".pairs"),
					"left by a killed run: %s", name)
			}
			fi, err := os.Stat(h.receiver["key_file"])
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
		})
	}
}
