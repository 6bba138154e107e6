// Command resume measures what resuming cut uploads saves (issue 16): one episode
// shipped by the real `cis490 ship` to the real `cis490 serve` over a link shaped
// and cut between two network namespaces (internal/e2e's CutRig), with resumption
// and without it.
//
//	sudo go run ./bench/resume [-mib 512] [-runs 3] [-rate 50mbit] [-loss 1] [-down 5s] [-timeout 3s] [-cap 20m] [-modes resume,no-resume,tcp]
//
// Each run is a new pair of namespaces, a new receiver and one random episode of
// -mib MiB. The lab end goes down for -down three times, when it has transmitted
// 25, 50 and 75 % of the episode's size (counted from the first ship's start). Modes:
//
//   - resume: `cis490 ship`, receiver.timeout -timeout (shorter than a cut, so a cut
//     ends the connection and ship resumes).
//   - no-resume: `cis490 ship --no-resume`, the same timeout; when a run gives up
//     (ship.retries used up) ship is started again at once, as the next timer would
//     start it 5 min later, until the episode is stored or -cap is over.
//   - tcp: `cis490 ship` with the default receiver.timeout (30 s): TCP itself rides
//     out cuts shorter than that.
//
// Reported a run: time until the episode is stored, ship runs, resumes, the bytes
// sent twice (the receiver's index: every PUT's body bytes, minus the size), and what
// the lab end transmitted (frames: headers and retransmissions included). Then the
// median and range a mode. There is no delay on the link: this kernel has no netem.
// See bench/README.md.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cis490/cis490/internal/e2e"
)

var verbose bool

type result struct {
	mode           string
	arrived        bool
	elapsed        time.Duration
	ships, resumed int
	twice, txOver  int64
	exitCodes      []int
	reason         string
	putLines       []string
	size           int64
}

func main() {
	mib := flag.Int64("mib", 512, "episode size in MiB")
	runs := flag.Int("runs", 3, "runs of each mode")
	rate := flag.String("rate", "50mbit", "the link's rate each way (tc's syntax)")
	loss := flag.Int("loss", 1, "percent of the packets each end sends that are dropped")
	down := flag.Duration("down", 5*time.Second, "how long each of the three cuts lasts")
	timeout := flag.String("timeout", "3s", "the lab host's receiver.timeout in the resume and no-resume modes")
	capWall := flag.Duration("cap", 20*time.Minute, "longest a run may take before it is reported as not arrived")
	modes := flag.String("modes", "resume,no-resume,tcp", "modes to run, in this order")
	flag.BoolVar(&verbose, "v", false, "print each ship run's log")
	flag.Parse()
	if err := e2e.LinkUnavailable(); err != nil {
		fmt.Fprintln(os.Stderr, "resume: cannot make the network namespaces:", err)
		os.Exit(2)
	}
	work, err := os.MkdirTemp("", "cis490-bench-resume-")
	must(err)
	defer os.RemoveAll(work)
	bin, err := e2e.Build(work, "")
	must(err)
	size := *mib << 20
	fmt.Printf("episode %d bytes, link %s each way, %d %% loss, no delay, three %s cuts at 25/50/75 %% of the size transmitted; %d run(s) a mode\n",
		size, *rate, *loss, *down, *runs)
	var all []result
	for _, mode := range strings.Split(*modes, ",") {
		for i := range *runs {
			res, err := runOnce(filepath.Join(work, fmt.Sprintf("%s-%d", mode, i)), bin, mode, size, *rate, *loss, *down, *timeout, *capWall)
			must(err)
			report(res)
			all = append(all, res)
		}
	}
	fmt.Println()
	summarize(all)
}

func runOnce(dir, bin, mode string, size int64, rate string, loss int, down time.Duration, timeout string, capWall time.Duration) (result, error) {
	res := result{mode: mode, size: size}
	opts := e2e.RigOptions{Rate: rate, LossPercent: loss, Timeout: timeout}
	var args []string
	switch mode {
	case "resume":
	case "no-resume":
		args = []string{"--no-resume"}
	case "tcp":
		opts.Timeout = ""
	default:
		return res, fmt.Errorf("unknown mode %q (resume, no-resume, tcp)", mode)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return res, err
	}
	rig, err := e2e.StartCutRig(dir, bin, opts)
	defer func() { rig.Close() }() // a rig comes back also on failure, to remove what it made
	if err != nil {
		return res, err
	}
	sha, err := rig.Drop("ep-big.tar", size)
	if err != nil {
		return res, err
	}
	cuts, err := rig.CutPoints(size, 0.25, 0.50, 0.75)
	if err != nil {
		return res, err
	}
	stored := filepath.Join(rig.Data, "episodes", "lab-07", sha)
	start := time.Now()
	var tx int64
	for {
		left := capWall - time.Since(start)
		if left <= 0 {
			res.reason = "cap reached"
			break
		}
		run, err := rig.Ship(cuts, down, left, args...)
		if err != nil {
			res.reason = err.Error()
			break
		}
		if verbose {
			fmt.Printf("-- ship run %d (%d cuts made, exit %d):\n%s%s", res.ships+1, run.Cuts, run.Code, run.Stdout, run.Stderr)
		}
		res.ships++
		res.resumed += run.Resumed
		res.exitCodes = append(res.exitCodes, run.Code)
		tx += run.TxBytes
		cuts = cuts[run.Cuts:]
		if _, err := os.Stat(stored); err == nil {
			res.arrived = true
			break
		} else if !errors.Is(err, os.ErrNotExist) {
			return res, err
		}
		if run.Code == 0 {
			res.reason = "ship exited 0 but the episode is not stored"
			break
		}
	}
	res.elapsed = time.Since(start)
	got, lines, err := rig.PutBytes(sha)
	res.twice, res.txOver, res.putLines = got-size, tx-size, lines
	return res, err
}

func report(r result) {
	status := "arrived"
	if !r.arrived {
		status = "NOT arrived (" + r.reason + ")"
	}
	fmt.Printf("%-9s %s in %s: %d ship run(s) (exit %v), %d resume(s), sent twice %d bytes (%.1f %%), lab end transmitted %.1f %% over the size; PUTs %s\n",
		r.mode, status, r.elapsed.Round(100*time.Millisecond), r.ships, r.exitCodes, r.resumed, r.twice, pct(r.twice, r.size), pct(r.txOver, r.size),
		strings.Join(r.putLines, " "))
}

func summarize(all []result) {
	fmt.Println("| mode | arrived | time to arrive, median (min–max) | sent twice, median (min–max) | ship runs |")
	fmt.Println("|---|---|---|---|---|")
	var order []string
	for _, r := range all {
		if !slices.Contains(order, r.mode) {
			order = append(order, r.mode)
		}
	}
	for _, mode := range order {
		var times []time.Duration
		var twice []float64
		var ships []int
		arrived, n := 0, 0
		for _, r := range all {
			if r.mode != mode {
				continue
			}
			n++
			if r.arrived {
				arrived++
			}
			times, twice, ships = append(times, r.elapsed), append(twice, pct(r.twice, r.size)), append(ships, r.ships)
		}
		slices.Sort(times)
		slices.Sort(twice)
		fmt.Printf("| %s | %d/%d | %s (%s–%s) | %.1f %% (%.1f–%.1f %%) | %v |\n", mode, arrived, n,
			times[len(times)/2].Round(100*time.Millisecond), times[0].Round(100*time.Millisecond), times[len(times)-1].Round(100*time.Millisecond),
			twice[len(twice)/2], twice[0], twice[len(twice)-1], ships)
	}
}

func pct(n, of int64) float64 { return 100 * float64(n) / float64(of) }

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "resume:", err)
		os.Exit(1)
	}
}
