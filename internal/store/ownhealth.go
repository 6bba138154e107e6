package store

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// PutOwnHealth stores the receiver's own doctor report as host-health/<host>.json,
// exactly as PutHostHealth stores a lab host's, but without Open: Open sweeps tmp/,
// where the receiver running beside `cis490 health ship` keeps its uploads in flight.
// The data folder must exist: a Pi whose receiver never ran has no fleet to report to.
func PutOwnHealth(dataDir, host string, report []byte, receivedAt time.Time) error {
	if _, err := os.Stat(dataDir); err != nil {
		return fmt.Errorf("store this receiver's own report: serve.data_dir: %w; has `cis490 serve` run here with this configuration?", err)
	}
	s := &Store{dir: dataDir, health: filepath.Join(dataDir, "host-health"), tmp: filepath.Join(dataDir, "tmp")}
	for _, d := range []string{s.health, s.tmp} {
		if err := os.MkdirAll(d, dirPerm); err != nil {
			return fmt.Errorf("store this receiver's own report: %w; check serve.data_dir and that this user may write there", err)
		}
	}
	return s.PutHostHealth(host, report, receivedAt)
}
