// Package e2e runs the real cis490 binary, built once per test run, the way a user
// would: with a config file, flags, signals and exit codes.
package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build compiles ./cmd/cis490 into dir, stamping commit when it is not empty (as the
// release build does), and returns the binary's path.
func Build(dir, commit string) (string, error) {
	_, file, _, _ := runtime.Caller(0)
	repo := filepath.Join(filepath.Dir(file), "..", "..")
	bin := filepath.Join(dir, "cis490")
	if commit != "" {
		bin += "-" + commit
	}
	args := []string{"build", "-o", bin}
	if commit != "" {
		args = append(args, "-ldflags", "-X github.com/cis490/cis490/internal/buildinfo.commit="+commit+
			" -X github.com/cis490/cis490/internal/buildinfo.version=v0.0.0-e2e")
	}
	cmd := exec.Command("go", append(args, "./cmd/cis490")...)
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// Env is a clean environment for the binary: no config of the machine's or the user's
// is found, and the default data folder is the test's: STATE_DIRECTORY is what
// systemd's StateDirectory= sets, and it wins over /var/lib/cis490 when tests run as
// root (as CI does).
func Env(t *testing.T) []string {
	home := t.TempDir()
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_STATE_HOME=" + filepath.Join(home, ".local", "state"),
		"STATE_DIRECTORY=" + filepath.Join(home, "state"),
	}
}

// Result is a finished command.
type Result struct {
	Code           int
	Stdout, Stderr string
}

// Run runs the binary to completion.
func Run(t *testing.T, bin string, env []string, stdin io.Reader, args ...string) Result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %s %v: %v", bin, args, err)
	}
	return Result{Code: code, Stdout: out.String(), Stderr: errb.String()}
}

// Server is a running `cis490 serve`.
type Server struct {
	URL  string
	Addr string
	cmd  *exec.Cmd
	done chan struct{}
	code int

	mu   sync.Mutex
	logs []map[string]any
	raw  bytes.Buffer
}

// StartServe starts `cis490 serve` with args and waits until it logs that it listens.
// The server logs JSON (stderr is not a terminal), so the bound address is read from
// its "receiver listening" line.
func StartServe(t *testing.T, bin string, env []string, scheme string, args ...string) *Server {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve"}, args...)...)
	cmd.Env = env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &Server{cmd: cmd, done: make(chan struct{})}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			var m map[string]any
			_ = json.Unmarshal([]byte(line), &m)
			s.mu.Lock()
			s.raw.WriteString(line + "\n")
			s.logs = append(s.logs, m)
			s.mu.Unlock()
			if m["message"] == "receiver listening" {
				addrc <- m["addr"].(string)
			}
		}
	}()
	go func() {
		_ = cmd.Wait()
		s.code = cmd.ProcessState.ExitCode()
		close(s.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-s.done
	})
	select {
	case s.Addr = <-addrc:
		s.URL = scheme + "://" + s.Addr
	case <-s.done:
		t.Fatalf("cis490 serve exited with %d before listening:\n%s", s.code, s.Logs())
	case <-time.After(20 * time.Second):
		t.Fatalf("cis490 serve did not start listening:\n%s", s.Logs())
	}
	return s
}

// Logs returns everything the server logged so far.
func (s *Server) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.raw.String()
}

// HasLog reports whether a log line with this message was written.
func (s *Server) HasLog(message string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.logs {
		if m["message"] == message || strings.Contains(fmt.Sprint(m["message"]), message) {
			return true
		}
	}
	return false
}

// Stop sends SIGTERM and waits for the exit code.
func (s *Server) Stop(t *testing.T) int {
	t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	return s.Wait(t)
}

// Signal sends SIGTERM without waiting.
func (s *Server) Signal() { _ = s.cmd.Process.Signal(syscall.SIGTERM) }

// Wait waits for the server to exit.
func (s *Server) Wait(t *testing.T) int {
	t.Helper()
	select {
	case <-s.done:
		return s.code
	case <-time.After(30 * time.Second):
		t.Fatalf("cis490 serve did not exit:\n%s", s.Logs())
		return -1
	}
}
