// Command limits measures what hostile or broken clients cost a real `cis490 serve`:
// its peak RSS and open file descriptors, and how long a heartbeat takes meanwhile.
//
//	go run ./bench/limits -bin /tmp/cis490 [-runs 3] [-for 30s] [-drippers 300] [-burst 1000000] [-idle 5000]
//
// Three loads, on loopback:
//
//   - drip: -drippers uploads at once, each from its own host, that send their
//     headers and -burst bytes of a 64 MiB body (enough to fill the receiver's first
//     1 MiB buffer), then a byte every 20 s; one that is answered or dropped starts
//     over at once.
//   - idle: -idle connections that send nothing; one the receiver closes is opened
//     again at once.
//   - both at once.
//
// The receiver runs with `ulimit -n 4096`, as cis490-receiver.service runs it
// (LimitNOFILE=4096), in open mode with a new data folder; GOGC, GOMEMLIMIT and
// GODEBUG pass through to it. Every second a heartbeat on a new connection is timed
// (60 s at most). See bench/README.md.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	bin := flag.String("bin", "", "the cis490 binary to measure")
	runs := flag.Int("runs", 3, "runs of each load")
	dur := flag.Duration("for", 30*time.Second, "how long each load lasts")
	drippers := flag.Int("drippers", 300, "uploads dripping at once")
	burst := flag.Int("burst", 1000000, "bytes each dripping upload sends before it drips")
	idle := flag.Int("idle", 5000, "idle connections at once")
	flag.Parse()
	if *bin == "" {
		fmt.Fprintln(os.Stderr, "limits: -bin is required (go build -o /tmp/cis490 ./cmd/cis490)")
		os.Exit(2)
	}
	loads := []struct {
		name string
		run  func(ctx context.Context, addr string)
	}{
		{fmt.Sprintf("drip %d", *drippers), func(ctx context.Context, addr string) {
			many(ctx, *drippers, func(i int) { drip(ctx, addr, i, *burst) })
		}},
		{fmt.Sprintf("idle %d", *idle), func(ctx context.Context, addr string) { many(ctx, *idle, func(int) { hold(ctx, addr) }) }},
		{"both", func(ctx context.Context, addr string) {
			many(ctx, *drippers+*idle, func(i int) {
				if i < *drippers {
					drip(ctx, addr, i, *burst)
				} else {
					hold(ctx, addr)
				}
			})
		}},
	}
	fmt.Printf("%s, %d runs of %v; RSS is VmHWM, MB = 10^6 bytes; heartbeats: answered/sent, median and worst latency\n", *bin, *runs, *dur)
	failed := false
	for _, l := range loads {
		var results []result
		for run := 1; run <= *runs; run++ {
			r, err := measure(*bin, *dur, l.run)
			if err != nil {
				fmt.Fprintf(os.Stderr, "limits: %s run %d: %v\n", l.name, run, err)
				failed = true
				continue
			}
			fmt.Printf("  %-10s run %d: %s\n", l.name, run, r)
			results = append(results, r)
		}
		if len(results) > 0 {
			fmt.Printf("%-10s median: %s\n", l.name, median(results))
		}
	}
	if failed {
		os.Exit(1)
	}
}

type result struct {
	rssMB       float64
	fds         int
	beatsOK     int
	beats       int
	beatP50     time.Duration
	beatMax     time.Duration
	exitCode    int
	stopSeconds float64
}

func (r result) String() string {
	return fmt.Sprintf("peak RSS %5.1f MB, peak FDs %5d, heartbeats %2d/%2d, %7v median, %7v worst; SIGTERM: exit %d in %.1fs",
		r.rssMB, r.fds, r.beatsOK, r.beats, r.beatP50.Round(time.Millisecond), r.beatMax.Round(time.Millisecond), r.exitCode, r.stopSeconds)
}

func median(rs []result) result {
	pick := func(f func(result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	return result{
		rssMB:       pick(func(r result) float64 { return r.rssMB }),
		fds:         int(pick(func(r result) float64 { return float64(r.fds) })),
		beatsOK:     int(pick(func(r result) float64 { return float64(r.beatsOK) })),
		beats:       int(pick(func(r result) float64 { return float64(r.beats) })),
		beatP50:     time.Duration(pick(func(r result) float64 { return float64(r.beatP50) })),
		beatMax:     time.Duration(pick(func(r result) float64 { return float64(r.beatMax) })),
		exitCode:    int(pick(func(r result) float64 { return float64(r.exitCode) })),
		stopSeconds: pick(func(r result) float64 { return r.stopSeconds }),
	}
}

// measure starts a receiver, puts it under load for dur while sampling it and timing
// heartbeats, then stops the load and the receiver.
func measure(bin string, dur time.Duration, load func(ctx context.Context, addr string)) (result, error) {
	root, err := os.MkdirTemp("", "cis490-limits-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(root)
	cfg := filepath.Join(root, "lab-host.toml")
	if err := os.WriteFile(cfg, []byte("[serve]\nmin_free_bytes = 0\n"), 0o600); err != nil {
		return result{}, err
	}
	cmd := exec.Command("sh", "-c", `ulimit -n 4096 && exec "$0" "$@"`, bin, "serve", "--config", cfg,
		"--log-format", "json", "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(root, "data"))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + root, "XDG_CONFIG_HOME=" + root, "XDG_STATE_HOME=" + root}
	for _, k := range []string{"GOGC", "GOMEMLIMIT", "GODEBUG"} { // for experiments
		if v, ok := os.LookupEnv(k); ok {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return result{}, err
	}
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	defer func() { _ = cmd.Process.Kill(); <-exited }()
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var line struct{ Message, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) != nil {
				fmt.Fprintln(os.Stderr, sc.Text()) // the runtime's own, such as GODEBUG=gctrace=1
			} else if line.Message == "receiver listening" {
				addrc <- line.Addr
			}
		}
	}()
	var addr string
	select {
	case addr = <-addrc:
	case <-exited:
		return result{}, fmt.Errorf("the receiver exited at start")
	case <-time.After(10 * time.Second):
		return result{}, fmt.Errorf("the receiver did not start listening")
	}

	var r result
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); load(ctx, addr) }()
	beats := make(chan time.Duration, 1000) // < 0: failed
	var probes sync.WaitGroup
	tick := time.NewTicker(time.Second)
	deadline := time.After(dur)
sampling:
	for {
		select {
		case <-tick.C:
			probes.Add(1)
			go func() { defer probes.Done(); beats <- heartbeat(addr) }()
			r.fds = max(r.fds, countFDs(cmd.Process.Pid))
		case <-deadline:
			break sampling
		}
	}
	tick.Stop()
	r.rssMB = float64(statusKB(cmd.Process.Pid, "VmHWM")) * 1024 / 1e6
	probes.Wait() // a probe that is not answered gives up after 60 s
	close(beats)
	var lat []time.Duration
	for d := range beats {
		r.beats++
		if d >= 0 {
			r.beatsOK++
			lat = append(lat, d)
		}
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		r.beatP50, r.beatMax = lat[len(lat)/2], lat[len(lat)-1]
	}
	stop()
	wg.Wait()

	stopped := time.Now()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(100 * time.Second):
		return r, fmt.Errorf("the receiver did not exit within 100 s of SIGTERM")
	}
	r.stopSeconds = time.Since(stopped).Seconds()
	r.exitCode = cmd.ProcessState.ExitCode()
	return r, nil
}

func many(ctx context.Context, n int, f func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); f(i) }()
	}
	wg.Wait()
}

// drip uploads as host lab-<i> burst bytes, then a byte every 20 s, over and over,
// until ctx ends.
func drip(ctx context.Context, addr string, i, burst int) {
	first := make([]byte, burst)
	for ctx.Err() == nil {
		c, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, "tcp", addr)
		if err != nil {
			pause(ctx, 100*time.Millisecond)
			continue
		}
		sha := make([]byte, 32)
		_, _ = rand.Read(sha)
		_, err = fmt.Fprintf(c, "PUT /v1/episodes HTTP/1.1\r\nHost: bench\r\nX-Cis490-Host: lab-%03d\r\nX-Cis490-Episode: drip.tar\r\n"+
			"X-Cis490-Sha256: %s\r\nContent-Length: %d\r\n\r\n", i, hex.EncodeToString(sha), 64<<20)
		answered := make(chan struct{})
		go func() { _, _ = io.Copy(io.Discard, c); close(answered) }()
		if err == nil {
			// A refused upload is answered unread; its connection is then closed.
			_ = c.SetWriteDeadline(time.Now().Add(30 * time.Second))
			_, err = c.Write(first)
			_ = c.SetWriteDeadline(time.Time{})
		}
		if err == nil {
			t := time.NewTicker(20 * time.Second)
		sending:
			for {
				select {
				case <-t.C:
					if _, err := c.Write([]byte("x")); err != nil {
						break sending
					}
				case <-answered:
					break sending
				case <-ctx.Done():
					break sending
				}
			}
			t.Stop()
		}
		c.Close()
		pause(ctx, 100*time.Millisecond)
	}
}

// hold keeps a connection open that sends nothing, opening another once the receiver
// closes it, until ctx ends.
func hold(ctx context.Context, addr string) {
	for ctx.Err() == nil {
		c, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, "tcp", addr)
		if err != nil {
			pause(ctx, 100*time.Millisecond)
			continue
		}
		closed := make(chan struct{})
		go func() { _, _ = io.Copy(io.Discard, c); close(closed) }()
		select {
		case <-closed:
		case <-ctx.Done():
		}
		c.Close()
	}
}

func pause(ctx context.Context, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}

// heartbeat times one POST /v1/heartbeat on a new connection; -1 if it failed.
func heartbeat(addr string) time.Duration {
	d, err := heartbeatOnce(addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "limits: heartbeat:", err)
		return -1
	}
	return d
}

func heartbeatOnce(addr string) (time.Duration, error) {
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/heartbeat", nil)
	req.Header.Set("X-Cis490-Host", "probe")
	res, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent {
		return 0, fmt.Errorf("answered %s", res.Status)
	}
	return time.Since(start), nil
}

func countFDs(pid int) int {
	entries, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(entries)
}

// statusKB reads a "Key:   123 kB" line of /proc/<pid>/status.
func statusKB(pid int, key string) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
