// Command upload measures how fast a real `cis490 serve` receives episodes over
// loopback, as ratios to baselines taken in the same run on the same machine:
//
//	go run ./bench/upload -bin /tmp/bench-cis490 [-size 512MiB] [-runs 3] [-pin]
//
// Each run: crypto/sha256 alone over the bytes to send (the baseline), the same upload
// to a sink that only hashes (the ceiling of client, loopback and hashing together), a
// write+fsync of as many bytes straight to the disk, one upload to the receiver, then
// -concurrent uploads at once. At the end, the receiver's peak RSS and a table of
// medians and ranges. Every upload must be answered 201. See bench/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/cis490/cis490/internal/config"
)

type options struct {
	bin        string
	size       int64
	runs       int
	concurrent int
	pin        bool
	warm       bool
	timeout    time.Duration
	sink       sinkOptions
}

// With -pin the client runs on clientCPU and the receiver on receiverCPU.
const (
	clientCPU   = "0"
	receiverCPU = "1"
	pinnedEnv   = "CIS490_BENCH_PINNED"
)

func main() {
	if len(os.Args) == 4 && os.Args[1] == sinkArg {
		if err := serveSink(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "upload sink:", err)
			os.Exit(1)
		}
		return
	}
	opts, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "upload:", err)
		os.Exit(2)
	}
	if opts.pin {
		if err := pinSelf(); err != nil {
			fmt.Fprintln(os.Stderr, "upload: -pin:", err)
			os.Exit(2)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(ctx, opts.timeout)
	err = run(ctx, opts, os.Stdout)
	cancel()
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "upload:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (options, error) {
	var opts options
	fs := flag.NewFlagSet("upload", flag.ContinueOnError)
	fs.StringVar(&opts.bin, "bin", "", "the cis490 binary to benchmark (go build -o /tmp/bench-cis490 ./cmd/cis490)")
	size := fs.String("size", "512MiB", "bytes per upload (1MiB to 8GiB)")
	fs.IntVar(&opts.runs, "runs", 3, "how many times to repeat the baselines and uploads (1 to 20)")
	fs.IntVar(&opts.concurrent, "concurrent", 4, "uploads at once in the concurrent phase (1 to 16)")
	fs.BoolVar(&opts.pin, "pin", false, "pin this client to CPU "+clientCPU+" and the receiver to CPU "+receiverCPU+" (taskset)")
	fs.BoolVar(&opts.warm, "warm", false, "start each upload phase right after freeing as much page cache as it will fill (see README: free page reporting)")
	fs.DurationVar(&opts.timeout, "timeout", 15*time.Minute, "give up after this long")
	fs.BoolVar(&opts.sink.pipelined, "sink-pipelined", false, "the sink reads the next buffer while another goroutine hashes the last one")
	sinkRead := fs.String("sink-read", "1MiB", "the sink's read buffer: it hashes this much at a time (4KiB to 64MiB)")
	if err := fs.Parse(args); err != nil {
		return opts, err
	}
	if fs.NArg() > 0 {
		return opts, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if opts.bin == "" {
		return opts, errors.New("-bin is required: go build -o /tmp/bench-cis490 ./cmd/cis490")
	}
	n, err := config.ParseByteSize(*size)
	if err != nil {
		return opts, fmt.Errorf("-size: %w", err)
	}
	opts.size = int64(n)
	r, err := config.ParseByteSize(*sinkRead)
	if err != nil {
		return opts, fmt.Errorf("-sink-read: %w", err)
	}
	opts.sink.read = int(r)
	switch {
	case opts.sink.read < 4<<10 || opts.sink.read > 64<<20:
		return opts, fmt.Errorf("-sink-read %s: want 4KiB to 64MiB", *sinkRead)
	case opts.size < 1<<20 || opts.size > 8<<30:
		return opts, fmt.Errorf("-size %s: want 1MiB to 8GiB (the receiver's default max_episode_bytes)", *size)
	case opts.runs < 1 || opts.runs > 20:
		return opts, fmt.Errorf("-runs %d: want 1 to 20", opts.runs)
	case opts.concurrent < 1 || opts.concurrent > 16:
		return opts, fmt.Errorf("-concurrent %d: want 1 to 16", opts.concurrent)
	case opts.timeout <= 0 || opts.timeout > time.Hour:
		return opts, fmt.Errorf("-timeout %s: want up to 1h", opts.timeout)
	}
	return opts, nil
}

// pinSelf runs this program again under `taskset -c 0`, so that every thread of the
// client is pinned from the start; the receiver gets its own CPU in startReceiver.
func pinSelf() error {
	if os.Getenv(pinnedEnv) != "" {
		return nil
	}
	if runtime.NumCPU() < 2 {
		return fmt.Errorf("needs 2 CPUs, this process may use %d", runtime.NumCPU())
	}
	taskset, err := exec.LookPath("taskset")
	if err != nil {
		return fmt.Errorf("%w (Debian package util-linux)", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	argv := append([]string{"taskset", "-c", clientCPU, exe}, os.Args[1:]...)
	return syscall.Exec(taskset, argv, append(os.Environ(), pinnedEnv+"=1"))
}

// run is the whole benchmark; it removes everything it created before returning.
func run(ctx context.Context, opts options, out io.Writer) (err error) {
	root, err := os.MkdirTemp("", "cis490-bench-upload-")
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, os.RemoveAll(root)) }()
	if err := checkFree(root, opts); err != nil {
		return err
	}
	b := newBench(opts, root)
	fmt.Fprintf(out, "preparing: %d streams of %s, hashing the %d concurrent ones (untimed)\n",
		opts.concurrent+1, config.ByteSize(opts.size), opts.concurrent)
	b.prepare()

	cpus := ""
	if opts.pin {
		cpus = receiverCPU
	}
	rcv, err := startReceiver(opts.bin, root, cpus)
	if err != nil {
		return err
	}
	defer func() {
		if rcv != nil {
			_ = rcv.stop()
		}
	}()
	b.rcv = rcv
	sinkAddr, stopSink, err := startSink(cpus, opts.sink)
	if err != nil {
		return err
	}
	defer stopSink()
	b.sinkURL = "http://" + sinkAddr
	printHeader(out, opts, rcv)

	var results []runResult
	for i := 1; i <= opts.runs; i++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("run %d: %w", i, err)
		}
		r, err := b.run(ctx, i)
		if err != nil {
			return fmt.Errorf("run %d: %w (receiver log:\n%s)", i, err, rcv.logTail())
		}
		printRun(out, i, opts, r)
		results = append(results, r)
		if err := b.removeStored(); err != nil {
			return err
		}
	}
	rss, err := peakRSS(rcv.pid())
	if err != nil {
		return err
	}
	logErrors := rcv.errorLines()
	stopErr := rcv.stop()
	rcv = nil
	if stopErr != nil {
		return fmt.Errorf("receiver did not stop cleanly: %w", stopErr)
	}
	printSummary(out, opts, results, rss)
	if logErrors > 0 {
		return fmt.Errorf("the receiver logged %d error lines", logErrors)
	}
	return nil
}

// checkFree wants room for one run's uploads (removed only at the end of the run),
// -warm's probe file next to them, the receiver's min_free_bytes and a margin.
func checkFree(dir string, opts options) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return err
	}
	free := int64(st.Bavail) * st.Bsize
	need := int64(2*opts.concurrent+1)*opts.size + 512<<20 + 1<<30
	if free < need {
		return fmt.Errorf("%s has %s free; this benchmark needs %s", dir, config.ByteSize(free), config.ByteSize(need))
	}
	return nil
}
