package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/xid"

	"github.com/cis490/cis490/internal/index"
)

// generate writes days of index starting at first, as `cis490 serve` would have for
// hosts shipping every 5 minutes, and a recent doctor report per host. It writes the
// lines the index writer writes (index.Entry as JSON), buffered, to build 30 days fast.
func generate(dir string, hosts int, first time.Time, days int) (lines, bytes int64, err error) {
	if _, err := os.Stat(filepath.Join(dir, "index")); err == nil {
		return count(filepath.Join(dir, "index"))
	}
	idx := filepath.Join(dir, "index")
	if err := os.MkdirAll(idx, 0o750); err != nil {
		return 0, 0, err
	}
	rng := rand.New(rand.NewPCG(4, 90))
	const commit = "1234567890abcdef1234567890abcdef12345678"
	for d := range days {
		day := first.AddDate(0, 0, d)
		f, err := os.Create(filepath.Join(idx, day.Format(time.DateOnly)+".jsonl"))
		if err != nil {
			return 0, 0, err
		}
		w := bufio.NewWriterSize(f, 1<<20)
		for at := day; at.Before(day.AddDate(0, 0, 1)); at = at.Add(5 * time.Minute) {
			for h := range hosts {
				host := fmt.Sprintf("lab-%03d", h)
				ts := at.Add(time.Duration(h) * time.Second) // the hosts' timers are spread out
				remote := fmt.Sprintf("10.0.%d.%d:%d", h/250, h%250+1, 40000+rng.IntN(20000))
				hb := index.Entry{TS: ts, ID: xid.New().String(), Host: host, Route: "heartbeat", Method: "POST",
					Status: 204, Commit: commit, Stamped: true, DurMS: 0.4 + rng.Float64(), Remote: remote}
				sum := fmt.Sprintf("%064x", rng.Uint64())
				ep := index.Entry{TS: ts.Add(2 * time.Second), ID: xid.New().String(), Host: host, Route: "episodes", Method: "PUT",
					Status: 201, Bytes: 5<<20 + rng.Int64N(1<<20), SHA256: sum, Commit: commit, Stamped: true,
					DurMS: 300 + 100*rng.Float64(), Remote: remote}
				for _, e := range []index.Entry{hb, ep} {
					b, err := json.Marshal(e)
					if err != nil {
						return 0, 0, err
					}
					w.Write(append(b, '\n'))
				}
			}
		}
		if err := w.Flush(); err != nil {
			return 0, 0, err
		}
		if err := f.Close(); err != nil {
			return 0, 0, err
		}
	}
	if err := reports(dir, hosts, first.AddDate(0, 0, days)); err != nil {
		return 0, 0, err
	}
	return count(idx)
}

// reports stores a passing doctor report per host, received at 06:00 of the last day.
func reports(dir string, hosts int, end time.Time) error {
	hh := filepath.Join(dir, "host-health")
	if err := os.MkdirAll(hh, 0o750); err != nil {
		return err
	}
	for h := range hosts {
		host := fmt.Sprintf("lab-%03d", h)
		var checks []map[string]any
		for _, id := range []string{"config", "host-name", "receiver-reachable", "token", "commit-allowed", "client-cert",
			"clock-skew", "spool", "queue", "rejected", "disk", "timers", "version"} {
			checks = append(checks, map[string]any{"id": id, "status": "ok", "summary": id + " is fine", "hint": "", "duration_ms": 3, "details": map[string]any{}})
		}
		doc, err := json.Marshal(map[string]any{"schema": "cis490.doctor/v1", "host": host, "version": "v1.0.0", "commit": "1234567",
			"generated_at": end.Add(-18 * time.Hour), "received_at": end.Add(-18 * time.Hour), "status": "ok", "checks": checks})
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(hh, host+".json"), doc, 0o640); err != nil {
			return err
		}
	}
	return nil
}

func count(idx string) (lines, bytes int64, err error) {
	des, err := os.ReadDir(idx)
	if err != nil {
		return 0, 0, err
	}
	for _, de := range des {
		data, err := os.ReadFile(filepath.Join(idx, de.Name()))
		if err != nil {
			return 0, 0, err
		}
		bytes += int64(len(data))
		for _, c := range data {
			if c == '\n' {
				lines++
			}
		}
	}
	return lines, bytes, nil
}
