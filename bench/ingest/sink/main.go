// Command sink is the ceiling of bench/ingest: an HTTP server that reads an upload's
// body, hashes it with SHA-256 as it arrives and keeps nothing. Whatever a receiver
// does beyond that (a file system, fsync, bookkeeping) shows as its distance from this.
//
//	sink -listen 127.0.0.1:0 -read 1MiB
//
// It prints "listening ADDR" once it accepts, and answers every PUT or POST with 201
// and {"sha256": …, "size": …}, or 422 when X-Cis490-Sha256 or the last path element
// (restic's blob path, /repo/data/<sha256>) names another digest.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"path"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	read := flag.Int("read", 1<<20, "bytes per read from the body (the receiver reads 1 MiB chunks)")
	fill := flag.Bool("fill", true, "read until the buffer is full before hashing it, as the receiver does; false hashes each read as it comes")
	flag.Parse()
	if *read < 4096 {
		log.Fatalf("-read %d: at least 4096 bytes", *read)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("listening", ln.Addr())
	srv := &http.Server{Handler: sink{read: *read, fill: *fill}, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

type sink struct {
	read int
	fill bool
}

func (s sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && r.URL.Query().Has("create") {
		w.WriteHeader(http.StatusOK) // restic's "create the repository"
		return
	}
	if r.Method != http.MethodPut && r.Method != http.MethodPost {
		http.Error(w, "PUT or POST a body", http.StatusMethodNotAllowed)
		return
	}
	h := sha256.New()
	buf := make([]byte, s.read)
	var size int64
	for {
		var n int
		var err error
		if s.fill {
			n, err = io.ReadFull(r.Body, buf)
			if err == io.ErrUnexpectedEOF {
				err = io.EOF
			}
		} else {
			n, err = r.Body.Read(buf)
		}
		h.Write(buf[:n])
		size += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	sum := hex.EncodeToString(h.Sum(nil))
	want := r.Header.Get("X-Cis490-Sha256")
	if want == "" {
		want = path.Base(r.URL.Path)
	}
	if sum != want {
		http.Error(w, fmt.Sprintf("body's sha256 is %s, not %s", sum, want), http.StatusUnprocessableEntity)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]any{"sha256": sum, "size": size})
}
