// Command fleethealth times `cis490 fleet-health check` over a synthetic receiver data
// folder: 200 hosts shipping every 5 minutes (a heartbeat and an episode each time),
// with 2 days of request index, then with 30 days. SPEC §5.1 says a check's cost
// follows the fleet's size, not the receiver's age; the targets are a check under
// 0.3 s with 2 days, and at most 1.1× that with 30.
//
// With -roster, the 2-day case is timed a second time with every host in a tokens file
// (the roster, SPEC §5.1) and -silences silences in silences.jsonl, most of them over
// (expired or ended), some active: the targets are again under 0.3 s, and at most 1.1×
// the 2-day check without them, measured in the same run.
//
//	go run ./bench/fleethealth [-hosts 200] [-runs 15] [-check]
//	go run ./bench/fleethealth -hosts 300 -roster [-silences 1000]
//	go run ./bench/fleethealth -hosts 300 -dir /tmp/fh -cpuprofile cpu.out  # then go tool pprof
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/fleethealth"
)

func main() {
	hosts := flag.Int("hosts", 200, "lab hosts in the fleet")
	runs := flag.Int("runs", 15, "timed checks per case (the median is reported)")
	keep := flag.String("dir", "", "build the data folders here and keep them (default: a temporary folder)")
	check := flag.Bool("check", false, "exit 1 when a target is missed")
	roster := flag.Bool("roster", false, "also time the 2-day check with every host in a tokens file and -silences silences")
	nsilences := flag.Int("silences", 1000, "silences in silences.jsonl for the -roster case")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	err := profiled(*cpuprofile, func() error { return run(*hosts, *runs, *keep, *check, *roster, *nsilences) })
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/fleethealth:", err)
		os.Exit(1)
	}
}

// profiled runs fn under a CPU profile written to path ("" is none). It profiles the
// whole run, index generation included when the data folders are new: pass -dir with
// the folder of an earlier run to profile the checks alone.
func profiled(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return err
	}
	err = fn()
	pprof.StopCPUProfile()
	return errors.Join(err, f.Close())
}

// A case is one data folder to time checks over.
type benchCase struct {
	name   string
	days   int
	dir    string
	tokens string // the tokens file: the roster ("" is open mode)
}

const (
	twoDays    = "2 days of index"
	thirtyDays = "30 days of index"
	withRoster = "2 days + roster"
)

func run(hosts, runs int, keep string, check, roster bool, nsilences int) error {
	debug.SetGCPercent(fleethealth.BatchGCPercent) // as `cis490 fleet-health check` runs
	root := keep
	if root == "" {
		var err error
		if root, err = os.MkdirTemp("", "cis490-bench-fleethealth-"); err != nil {
			return err
		}
		defer os.RemoveAll(root)
	}
	// The last day ends at midnight; "end of day" is the worst time of day for a check:
	// its 24-hour window spans two full day files.
	lastDay := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	fmt.Printf("cis490 fleet-health check: %d hosts, a heartbeat and an episode every 5 min each; GOMAXPROCS=%d, %s\n",
		hosts, runtime.GOMAXPROCS(0), runtime.Version())
	cases := []*benchCase{{name: twoDays, days: 2}, {name: thirtyDays, days: 30}}
	for _, c := range cases {
		c.dir = filepath.Join(root, fmt.Sprintf("data-%dd", c.days))
		lines, bytes, err := generate(c.dir, hosts, lastDay.AddDate(0, 0, -c.days+1), c.days)
		if err != nil {
			return err
		}
		fmt.Printf("%s: %d lines, %.0f MiB in %s\n", c.name, lines, float64(bytes)/(1<<20), filepath.Join(c.dir, "index"))
	}
	if roster {
		c := &benchCase{name: withRoster, days: 2, dir: filepath.Join(root, "data-2d-roster")}
		var err error
		if c.tokens, err = rosterFolder(c.dir, cases[0].dir, hosts, nsilences, lastDay); err != nil {
			return err
		}
		fmt.Printf("%s: the same index and reports, %d host tokens in %s, %d silences in %s\n",
			c.name, hosts, c.tokens, nsilences, filepath.Join(c.dir, "silences.jsonl"))
		cases = append(cases, c)
	}
	times := map[string]map[string]sample{}
	for _, c := range cases {
		times[c.name] = map[string]sample{}
	}
	for _, at := range []struct {
		name string
		now  time.Time
	}{
		{"midday", lastDay.Add(12 * time.Hour)},
		{"end of day", lastDay.Add(24*time.Hour - time.Second)},
	} {
		// The cases take turns, so a busy neighbour on the machine slows both alike.
		samples := map[string][]sample{}
		var last = map[string]*fleethealth.Result{}
		for i := range runs + 1 {
			for _, c := range cases {
				s, res, err := timeCheck(c, at.now)
				if err != nil {
					return err
				}
				if i > 0 { // the first run warms the page cache, as the timer's previous run would have
					samples[c.name] = append(samples[c.name], s)
				}
				last[c.name] = res
			}
		}
		fmt.Printf("\nnow = %s (%s)\n", at.name, at.now.Format(time.RFC3339))
		for _, c := range cases {
			wall, cpu := medians(samples[c.name])
			times[c.name][at.name] = sample{wall, cpu}
			res := last[c.name]
			fmt.Printf("  %-17s median %6.1f ms wall, %6.1f ms CPU over %d runs (%d index files, %d lines read, %d decoded, %d hosts, %d alerting, %d silenced)\n",
				c.name, ms(wall), ms(cpu), runs, res.Index.Files, res.Index.Lines, res.Index.Entries, len(res.Hosts),
				hostsWith(res, fleethealth.HostAlerting), hostsWith(res, fleethealth.HostSilenced))
		}
	}
	fmt.Println()
	ok := true
	// The age ratio is judged on CPU time: on a shared machine the wall time of two
	// identical runs differs by more than the 10% being measured. Both are printed.
	for _, at := range []string{"midday", "end of day"} {
		two, thirty := times[twoDays][at], times[thirtyDays][at]
		wallRatio, cpuRatio := float64(thirty.wall)/float64(two.wall), float64(thirty.cpu)/float64(two.cpu)
		pass := two.wall < 300*time.Millisecond && cpuRatio <= 1.1
		ok = ok && pass
		fmt.Printf("%-10s 2 days %6.1f ms wall (target < 300 ms); 30 days / 2 days = %.2f CPU, %.2f wall (target <= 1.10): %s\n",
			at, ms(two.wall), cpuRatio, wallRatio, map[bool]string{true: "ok", false: "MISSED"}[pass])
		if !roster {
			continue
		}
		rs := times[withRoster][at]
		wallRatio, cpuRatio = float64(rs.wall)/float64(two.wall), float64(rs.cpu)/float64(two.cpu)
		pass = rs.wall < 300*time.Millisecond && cpuRatio <= 1.1
		ok = ok && pass
		fmt.Printf("%-10s roster and %d silences %6.1f ms wall (target < 300 ms); / 2 days = %.2f CPU, %.2f wall (target <= 1.10): %s\n",
			at, nsilences, ms(rs.wall), cpuRatio, wallRatio, map[bool]string{true: "ok", false: "MISSED"}[pass])
	}
	if check && !ok {
		return fmt.Errorf("a target was missed")
	}
	return nil
}

type sample struct{ wall, cpu time.Duration }

// timeCheck runs the check as the timer would (state, lock, alerts file, no
// forwarding) and measures its wall and CPU time.
func timeCheck(c *benchCase, now time.Time) (sample, *fleethealth.Result, error) {
	cfg := config.Default().FleetHealth
	cfg.Syslog = false
	opts := fleethealth.Options{Config: cfg, DataDir: c.dir, AlertsPath: filepath.Join(c.dir, "alerts.jsonl"),
		TokensFile: c.tokens, Now: now, Logger: zerolog.Nop()}
	runtime.GC()
	cpu0, start := cpuTime(), time.Now()
	res, err := fleethealth.Check(context.Background(), opts)
	return sample{time.Since(start), cpuTime() - cpu0}, res, err
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func medians(ss []sample) (wall, cpu time.Duration) {
	var ws, cs []time.Duration
	for _, s := range ss {
		ws, cs = append(ws, s.wall), append(cs, s.cpu)
	}
	slices.Sort(ws)
	slices.Sort(cs)
	return ws[len(ws)/2], cs[len(cs)/2]
}

func hostsWith(res *fleethealth.Result, status string) int {
	n := 0
	for _, h := range res.Hosts {
		if h.Status == status {
			n++
		}
	}
	return n
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
