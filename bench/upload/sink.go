package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The sink is this program run again with sinkArg: an HTTP server that receives an
// upload the way the receiver does (reads of 1 MiB, SHA-256, compare) but keeps
// nothing. An upload to it is the ceiling for the receiver on this machine, with the
// same client, loopback and hashing, and no file system at all. -sink-read and
// -sink-pipelined try other shapes of that ceiling: smaller reads that stay in the
// cache, or reading and hashing on two goroutines as the receiver does.
const sinkArg = "-internal-sink"

type sinkOptions struct {
	pipelined bool
	read      int
}

func (o sinkOptions) args() []string {
	return []string{strconv.FormatBool(o.pipelined), strconv.Itoa(o.read)}
}

// serveSink prints its address, then serves until its standard input closes.
func serveSink(args []string) error {
	var o sinkOptions
	var err1, err2 error
	o.pipelined, err1 = strconv.ParseBool(args[0])
	o.read, err2 = strconv.Atoi(args[1])
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr())
	srv := &http.Server{Handler: o, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (o sinkOptions) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := sha256.New()
	var size int64
	var err error
	if o.pipelined {
		size, err = readPipelined(r.Body, h, o.read)
	} else {
		size, err = readSerial(r.Body, h, o.read)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
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

// readSerial fills a buffer, hashes it, and only then reads again.
func readSerial(body io.Reader, h hash.Hash, bufSize int) (int64, error) {
	buf := make([]byte, bufSize)
	var size int64
	for {
		n, err := io.ReadFull(body, buf)
		h.Write(buf[:n])
		size += int64(n)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return size, nil
		}
		if err != nil {
			return size, err
		}
	}
}

// readPipelined fills one of three buffers while another goroutine hashes the
// buffers already filled, in order.
func readPipelined(body io.Reader, h hash.Hash, bufSize int) (int64, error) {
	const ring = 3
	free, full := make(chan []byte, ring), make(chan []byte, ring)
	for range ring {
		free <- make([]byte, bufSize)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for b := range full {
			h.Write(b)
			free <- b[:cap(b)]
		}
	}()
	var size int64
	var err error
	for {
		b := <-free
		var n int
		n, err = io.ReadFull(body, b)
		full <- b[:n]
		size += int64(n)
		if err != nil {
			break
		}
	}
	close(full)
	<-done
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = nil
	}
	return size, err
}

// startSink runs the sink, pinned to cpus when not empty; stop ends it.
func startSink(cpus string, o sinkOptions) (addr string, stop func(), err error) {
	exe, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	args := append([]string{exe, sinkArg}, o.args()...)
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
