// Command pagedata writes a receiver data folder for bench/page.sh: -hosts lab hosts
// shipping every 5 minutes (a heartbeat and an episode each time) over the day
// before -end, as `cis490 serve` writes its index, with a doctor report and a host
// token each (the roster) and an admin token, written alone to DIR/admin.token
// (0600). Every 30th host went quiet two hours before -end (silent), every 50th
// reports fail, every 70th has been refused 426 for the last hour: the shape of
// bench/fleetview and of BenchmarkFleetPage300Receiver (internal/receiver), ending
// at the clock's now so that a real `cis490 serve` sees it in its active window.
//
//	go run ./bench/pagedata -dir DIR [-hosts 300] [-end RFC3339]
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/cis490/cis490/internal/index"
	"github.com/cis490/cis490/internal/tokens"
)

func main() {
	dir := flag.String("dir", "", "the data folder to write (must not exist)")
	hosts := flag.Int("hosts", 300, "lab hosts in the fleet")
	endFlag := flag.String("end", "", "the end of the day of index, RFC 3339 (default: now)")
	flag.Parse()
	end := time.Now().UTC()
	if *endFlag != "" {
		t, err := time.Parse(time.RFC3339, *endFlag)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench/pagedata: -end:", err)
			os.Exit(2)
		}
		end = t.UTC()
	}
	if *dir == "" || *hosts < 1 {
		fmt.Fprintln(os.Stderr, "bench/pagedata: -dir DIR is required, and -hosts at least 1")
		os.Exit(2)
	}
	lines, err := write(*dir, *hosts, end)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/pagedata:", err)
		os.Exit(1)
	}
	fmt.Printf("%s: %d hosts, %d index lines over the day to %s, %d reports, %d host tokens and an admin token (admin.token)\n",
		*dir, *hosts, lines, end.Format(time.RFC3339), *hosts, *hosts)
}

func write(data string, hosts int, end time.Time) (int, error) {
	if _, err := os.Stat(data); err == nil {
		return 0, fmt.Errorf("%s exists: give a new folder", data)
	}
	for _, d := range []string{"index", "host-health"} {
		if err := os.MkdirAll(filepath.Join(data, d), 0o750); err != nil {
			return 0, err
		}
	}
	lines, err := writeIndex(filepath.Join(data, "index"), hosts, end)
	if err != nil {
		return lines, err
	}
	tokensFile := filepath.Join(data, "tokens.toml")
	for h := range hosts {
		host := fmt.Sprintf("lab-%03d", h)
		if err := writeReport(data, host, h%50 == 49, end); err != nil {
			return lines, err
		}
		if _, _, err := tokens.Mint(tokensFile, tokens.Identity{Host: host}, end.AddDate(0, 0, -30)); err != nil {
			return lines, err
		}
	}
	admin, _, err := tokens.Mint(tokensFile, tokens.Identity{Admin: "bench"}, end.AddDate(0, 0, -30))
	if err != nil {
		return lines, err
	}
	return lines, os.WriteFile(filepath.Join(data, "admin.token"), []byte(admin+"\n"), 0o600)
}

// writeIndex writes the index lines of [end-24h, end) into their day files.
func writeIndex(dir string, hosts int, end time.Time) (int, error) {
	rng := rand.New(rand.NewPCG(4, 90))
	const commit = "1234567890abcdef1234567890abcdef12345678"
	var (
		day   string
		f     *os.File
		w     *bufio.Writer
		lines int
	)
	closeDay := func() error {
		if f == nil {
			return nil
		}
		if err := w.Flush(); err != nil {
			return err
		}
		return f.Close()
	}
	start := end.Add(-24 * time.Hour).Truncate(5 * time.Minute)
	for at := start; at.Before(end.Add(-5 * time.Minute)); at = at.Add(5 * time.Minute) {
		for h := range hosts {
			ts := at.Add(time.Duration(h) * time.Second) // the hosts' timers are spread out
			if d := ts.Format(time.DateOnly); d != day {
				if err := closeDay(); err != nil {
					return lines, err
				}
				var err error
				if f, err = os.Create(filepath.Join(dir, d+".jsonl")); err != nil {
					return lines, err
				}
				day, w = d, bufio.NewWriterSize(f, 1<<20)
			}
			if h%30 == 29 && ts.After(end.Add(-2*time.Hour)) {
				continue
			}
			hb, ep := 204, 201
			if h%70 == 69 && ts.After(end.Add(-time.Hour)) {
				hb, ep = 426, 426
			}
			host := fmt.Sprintf("lab-%03d", h)
			remote := fmt.Sprintf("10.0.%d.%d:%d", h/250, h%250+1, 40000+rng.IntN(20000))
			for _, e := range []index.Entry{
				{TS: ts, Host: host, Route: "heartbeat", Method: "POST", Status: hb, Commit: commit, Stamped: true,
					DurMS: 0.4 + rng.Float64(), Remote: remote},
				{TS: ts.Add(2 * time.Second), Host: host, Route: "episodes", Method: "PUT", Status: ep,
					Bytes: 5<<20 + rng.Int64N(1<<20), SHA256: fmt.Sprintf("%064x", rng.Uint64()), Commit: commit, Stamped: true,
					DurMS: 300 + 100*rng.Float64(), Remote: remote},
			} {
				line, err := json.Marshal(e)
				if err != nil {
					return lines, err
				}
				if _, err := w.Write(append(line, '\n')); err != nil {
					return lines, err
				}
				lines++
			}
		}
	}
	return lines, closeDay()
}

func writeReport(data, host string, failing bool, end time.Time) error {
	status := "ok"
	if failing {
		status = "fail"
	}
	var checks []map[string]any
	for _, id := range []string{"config", "host-name", "receiver-reachable", "token", "commit-allowed", "client-cert",
		"clock-skew", "spool", "disk", "timers", "version"} {
		c := map[string]any{"id": id, "status": "ok", "summary": id + " is fine", "duration_ms": 3, "details": map[string]any{}}
		if id == "client-cert" {
			c["details"] = map[string]any{"not_after": end.AddDate(0, 0, 20)}
		}
		if id == "spool" && failing {
			c["status"], c["summary"], c["hint"] = "fail", "the spool holds 412 episodes", "cis490 ship --drain"
		}
		checks = append(checks, c)
	}
	doc, err := json.Marshal(map[string]any{"schema": "cis490.doctor/v1", "host": host, "version": "v1.0.0", "commit": "1234567",
		"generated_at": end.Add(-6 * time.Hour), "received_at": end.Add(-6 * time.Hour), "status": status, "checks": checks})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(data, "host-health", host+".json"), doc, 0o640)
}
