package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// The sink is this program run again with sinkArg: an HTTP server that receives an
// upload the way the receiver does (1 MiB reads, SHA-256, compare) but keeps nothing.
// An upload to it is the ceiling for the receiver on this machine, with the same
// client, loopback and hashing, and no file system at all.
const sinkArg = "-internal-sink"

// serveSink prints its address, then serves until its standard input closes.
func serveSink() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr())
	srv := &http.Server{Handler: http.HandlerFunc(sinkUpload), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func sinkUpload(w http.ResponseWriter, r *http.Request) {
	buf := make([]byte, 1<<20)
	h := sha256.New()
	var size int64
	for {
		n, err := io.ReadFull(r.Body, buf)
		h.Write(buf[:n])
		size += int64(n)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if sum != r.Header.Get("X-Cis490-Sha256") {
		http.Error(w, "digest mismatch: "+sum, http.StatusUnprocessableEntity)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(episodeResponse{SHA256: sum, Size: size, Status: "created"})
}

// startSink runs the sink, pinned to cpus when not empty; stop ends it.
func startSink(cpus string) (addr string, stop func(), err error) {
	exe, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	args := []string{exe, sinkArg}
	if cpus != "" {
		args = append([]string{"taskset", "-c", cpus}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start sink: %w", err)
	}
	stop = func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("sink did not start: %w", err)
	}
	return strings.TrimSpace(line), stop, nil
}
