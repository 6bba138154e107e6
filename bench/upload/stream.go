package main

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"time"
)

// blockSize is the pseudo-random block a stream repeats: incompressible, the same
// every run for a given seed, and the only part of a stream ever held in memory.
const blockSize = 4 << 20

// stream is size bytes of one seed's block, repeated.
type stream struct {
	block []byte
	size  int64
	off   int64
}

func newBlock(seed uint64) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	copy(key[8:], "cis490 bench/upload")
	b := make([]byte, blockSize)
	_, _ = rand.NewChaCha8(key).Read(b)
	return b
}

func newStream(block []byte, size int64) *stream { return &stream{block: block, size: size} }

func (s *stream) Read(p []byte) (int, error) {
	if s.off >= s.size {
		return 0, io.EOF
	}
	i := s.off % blockSize
	n := copy(p, s.block[i:min(blockSize, i+s.size-s.off)])
	s.off += int64(n)
	return n, nil
}

// WriteTo hands w slices of the block itself, with no copy in between, so the SHA-256
// baseline measures hashing alone.
func (s *stream) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for s.off < s.size {
		i := s.off % blockSize
		n, err := w.Write(s.block[i:min(blockSize, i+s.size-s.off)])
		s.off += int64(n)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// hashStream is the baseline: crypto/sha256 alone over the upload's bytes, on one core.
// It returns the digest the client then declares, so the client never hashes while
// it sends.
func hashStream(s *stream) (sha string, mbps float64) {
	h := sha256.New()
	start := time.Now()
	_, _ = s.WriteTo(h) // a hash.Hash never fails to write
	elapsed := time.Since(start)
	return hex.EncodeToString(h.Sum(nil)), rate(s.size, elapsed)
}

// hashTogether hashes a and b, size bytes each, on two threads at once and returns
// their combined rate. Read against hashStream: on a machine whose two CPUs are
// really one core shared (hyperthreads, or a host that packs a VM's vCPUs), it is
// about the same, and any upload has to share that core between the client, the
// kernel and the receiver.
func hashTogether(a, b []byte, size int64) float64 {
	var wg sync.WaitGroup
	start := time.Now()
	for _, block := range [][]byte{a, b} {
		wg.Go(func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			hashStream(newStream(block, size))
		})
	}
	wg.Wait()
	return rate(2*size, time.Since(start))
}

// diskWrite writes s to a new file in dir and fsyncs it: what the disk alone allows,
// since the receiver must have an upload's bytes on disk before its 201.
func diskWrite(dir string, s *stream) (mbps float64, err error) {
	f, err := os.CreateTemp(dir, "disk-probe-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	start := time.Now()
	if _, err := s.WriteTo(f); err != nil {
		return 0, fmt.Errorf("disk probe: %w", err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("disk probe: %w", err)
	}
	return rate(s.size, time.Since(start)), nil
}

// rate is in MB/s of 10^6 bytes, like `go test -bench`.
func rate(n int64, d time.Duration) float64 { return float64(n) / 1e6 / d.Seconds() }
