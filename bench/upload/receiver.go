package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// receiver is a real `cis490 serve` in open mode on a loopback port, with its own
// empty configuration file and data folder under root.
type receiver struct {
	cmd     *exec.Cmd
	addr    string
	dataDir string
	exited  chan struct{}
	waitErr error

	mu     sync.Mutex
	tail   []string // the last lines of its log, for error messages
	errors int      // log lines at level error
}

const tailLines = 20

// startReceiver runs bin; cpus, when not empty, pins it with taskset(1), which execs
// it in place so the pid stays the receiver's.
func startReceiver(bin, root, cpus string) (*receiver, error) {
	cfgFile := filepath.Join(root, "lab-host.toml")
	if err := os.WriteFile(cfgFile, nil, 0o600); err != nil {
		return nil, err
	}
	dataDir := filepath.Join(root, "data")
	args := []string{bin, "serve", "--config", cfgFile, "--log-format", "json",
		"--listen", "127.0.0.1:0", "--data-dir", dataDir}
	if cpus != "" {
		args = append([]string{"taskset", "-c", cpus}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = cleanEnv(root)
	// Should this program die without cleaning up, the receiver stops too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start receiver: %w", err)
	}
	r := &receiver{cmd: cmd, dataDir: dataDir, exited: make(chan struct{})}
	addrc := make(chan string, 1)
	go r.readLog(bufio.NewScanner(stderr), addrc)
	go func() { r.waitErr = cmd.Wait(); close(r.exited) }()

	select {
	case r.addr = <-addrc:
		return r, nil
	case <-r.exited:
		return nil, fmt.Errorf("receiver exited at start (%v):\n%s", r.waitErr, r.logTail())
	case <-time.After(10 * time.Second):
		r.stop()
		return nil, fmt.Errorf("receiver did not log \"receiver listening\" within 10s:\n%s", r.logTail())
	}
}

// cleanEnv keeps the receiver away from this machine's configuration and state:
// no CIS490_* overrides, no systemd STATE_DIRECTORY, XDG folders inside root.
func cleanEnv(root string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "CIS490_") || strings.HasPrefix(k, "XDG_") || k == "STATE_DIRECTORY" || k == "JOURNAL_STREAM" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "XDG_CONFIG_HOME="+root, "XDG_STATE_HOME="+root)
}

func (r *receiver) readLog(sc *bufio.Scanner, addrc chan<- string) {
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var entry struct{ Level, Message, Addr string }
		_ = json.Unmarshal([]byte(line), &entry)
		if entry.Message == "receiver listening" && entry.Addr != "" && addrc != nil {
			addrc <- entry.Addr
			addrc = nil
		}
		r.mu.Lock()
		r.tail = append(r.tail, line)
		if len(r.tail) > tailLines {
			r.tail = r.tail[1:]
		}
		if entry.Level == "error" || entry.Level == "fatal" || entry.Level == "panic" {
			r.errors++
		}
		r.mu.Unlock()
	}
}

func (r *receiver) logTail() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.tail, "\n")
}

func (r *receiver) errorLines() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.errors
}

func (r *receiver) pid() int { return r.cmd.Process.Pid }

// stop sends SIGTERM (the receiver finishes in-flight requests) and kills it if it
// has not exited 20 seconds later.
func (r *receiver) stop() error {
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
		return r.waitErr
	case <-time.After(20 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.exited
		return errors.New("receiver ignored SIGTERM for 20s and was killed")
	}
}

// peakRSS is VmHWM from /proc/<pid>/status, in bytes.
func peakRSS(pid int) (int64, error) {
	kb, err := statusField(pid, "VmHWM")
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(strings.TrimSuffix(kb, " kB"), 10, 64)
	return n << 10, err
}

func statusField(pid int, name string) (string, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && k == name {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("/proc/%d/status has no %s", pid, name)
}

// cpuTime is utime+stime of pid from /proc/<pid>/stat, in clock ticks.
func cpuTime(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces and parentheses; the fields after it do not.
	i := strings.LastIndex(string(data), ") ")
	var fields []string
	if i >= 0 {
		fields = strings.Fields(string(data[i+2:]))
	}
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	return utime + stime, errors.Join(err1, err2)
}

// busyTicks is the time all CPUs spent doing anything but idling or waiting for I/O,
// from the first line of /proc/stat, in clock ticks.
func busyTicks() (int64, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	fields := strings.Fields(line)
	if len(fields) < 9 || fields[0] != "cpu" {
		return 0, errors.New("/proc/stat: unexpected format")
	}
	var busy int64
	// user nice system idle iowait irq softirq steal: skip idle and iowait.
	for i, f := range fields[1:9] {
		if i == 3 || i == 4 {
			continue
		}
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		busy += n
	}
	return busy, nil
}

// clockTicks is CLK_TCK, the unit of /proc/<pid>/stat times.
func clockTicks() float64 {
	out, err := exec.CommandContext(context.Background(), "getconf", "CLK_TCK").Output()
	if n, perr := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && perr == nil && n > 0 {
		return float64(n)
	}
	return 100
}
