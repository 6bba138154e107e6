package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cis490/cis490/internal/config"
)

// Targets from the issue; a miss is reported, not fatal.
const (
	targetUploadVsSHA = 0.85
	targetConcVsOne   = 1.0
	targetPeakRSS     = 32e6 // bytes
)

func printHeader(out io.Writer, opts options, rcv *receiver) {
	online, _ := os.ReadFile("/sys/devices/system/cpu/online")
	mine, _ := statusField(os.Getpid(), "Cpus_allowed_list")
	theirs, _ := statusField(rcv.pid(), "Cpus_allowed_list")
	load, _ := os.ReadFile("/proc/loadavg")
	loadFields := append(strings.Fields(string(load)), "?", "?", "?")
	fmt.Fprintf(out, "%s  %s  cpus online %s, client on %s, receiver on %s (pid %d, %s); loadavg %s\n",
		time.Now().UTC().Format(time.RFC3339), runtime.Version(), strings.TrimSpace(string(online)), mine, theirs,
		rcv.pid(), rcv.addr, strings.Join(loadFields[:3], " "))
	pages := fmt.Sprintf("cold (settle %s + %s per GiB freed before each phase)", settleBase, settlePerGiB)
	if opts.warm {
		pages = "warm (recycled page cache)"
	}
	sink := "serial"
	if opts.sink.pipelined {
		sink = "pipelined"
	}
	fmt.Fprintf(out, "upload size %s, %d runs, %d concurrent, pages %s; sink %s, %s reads; MB = 10^6 bytes\n",
		config.ByteSize(opts.size), opts.runs, opts.concurrent, pages, sink, config.ByteSize(opts.sink.read))
}

func printRun(out io.Writer, n int, opts options, r runResult) {
	together := "n/a, pinned"
	if r.sha2 > 0 {
		together = fmt.Sprintf("%.2fx", r.sha2/r.sha)
	}
	fmt.Fprintf(out, "run %d: baselines: sha256 %.0f MB/s (2 threads together %s), sink upload %.0f MB/s = %.3f of sha256, disk write+fsync %.0f MB/s\n",
		n, r.sha, together, r.sink, r.sink/r.sha, r.disk)
	fmt.Fprintf(out, "       1 upload  %4.0f MB/s = %.3f of sha256   CPU s/GB: receiver %.2f, client %.2f; others %.2f cores\n",
		r.single, r.single/r.sha, r.singleUse.rcv, r.singleUse.client, r.singleUse.others)
	fmt.Fprintf(out, "       %d at once %4.0f MB/s = %.3f of 1 upload CPU s/GB: receiver %.2f, client %.2f; others %.2f cores\n",
		opts.concurrent, r.conc, r.conc/r.single, r.concUse.rcv, r.concUse.client, r.concUse.others)
}

func printSummary(out io.Writer, opts options, rs []runResult, rss int64) {
	col := func(f func(runResult) float64) []float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		return v
	}
	conc := fmt.Sprintf("%d at once", opts.concurrent)
	fmt.Fprintf(out, "\nsummary over %d runs (median, min–max):\n", len(rs))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "measure\ttarget\tmedian\trange\t")
	ratio := func(name string, target float64, v []float64) {
		fmt.Fprintf(tw, "%s\t≥ %.2f\t%.3f\t%.3f–%.3f\t%s\n", name, target, median(v), slices.Min(v), slices.Max(v), verdict(median(v) >= target))
	}
	ratio("1 upload / sha256", targetUploadVsSHA, col(func(r runResult) float64 { return r.single / r.sha }))
	ratio(conc+" / 1 upload", targetConcVsOne, col(func(r runResult) float64 { return r.conc / r.single }))
	fmt.Fprintf(tw, "receiver peak RSS (VmHWM)\t< %.0f MB\t%.1f MB\t\t%s\n", targetPeakRSS/1e6, float64(rss)/1e6, verdict(float64(rss) < targetPeakRSS))
	info := func(name, unit string, v []float64) {
		p := prec(v)
		fmt.Fprintf(tw, "%s\t\t%.*f%s\t%.*f–%.*f\t\n", name, p, median(v), unit, p, slices.Min(v), p, slices.Max(v))
	}
	info("1 upload / sink upload", "", col(func(r runResult) float64 { return r.single / r.sink }))
	info("sink upload / sha256", "", col(func(r runResult) float64 { return r.sink / r.sha }))
	info("1 upload / disk write+fsync", "", col(func(r runResult) float64 { return r.single / r.disk }))
	if !opts.pin {
		info("sha256, 2 threads / 1", "", col(func(r runResult) float64 { return r.sha2 / r.sha }))
	}
	info("sha256 alone", " MB/s", col(func(r runResult) float64 { return r.sha }))
	info("sink upload", " MB/s", col(func(r runResult) float64 { return r.sink }))
	info("disk write+fsync", " MB/s", col(func(r runResult) float64 { return r.disk }))
	info("1 upload", " MB/s", col(func(r runResult) float64 { return r.single }))
	info(conc+", aggregate", " MB/s", col(func(r runResult) float64 { return r.conc }))
	info("receiver CPU, 1 upload", " s/GB", col(func(r runResult) float64 { return r.singleUse.rcv }))
	info("client CPU, 1 upload", " s/GB", col(func(r runResult) float64 { return r.singleUse.client }))
	info("others, 1 upload", " cores", col(func(r runResult) float64 { return r.singleUse.others }))
	info("receiver CPU, "+conc, " s/GB", col(func(r runResult) float64 { return r.concUse.rcv }))
	info("client CPU, "+conc, " s/GB", col(func(r runResult) float64 { return r.concUse.client }))
	info("others, "+conc, " cores", col(func(r runResult) float64 { return r.concUse.others }))
	_ = tw.Flush()
}

// prec shows rates as whole numbers and ratios and CPU times with decimals.
func prec(v []float64) int {
	if median(v) >= 10 {
		return 0
	}
	return 3
}

func verdict(ok bool) string {
	if ok {
		return "ok"
	}
	return "MISS"
}

func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
