package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"
)

const benchSize = 64 << 20

// benchBody is incompressible and the same every run, so runs compare.
func benchBody() []byte {
	b := make([]byte, benchSize)
	_, _ = rand.NewChaCha8([32]byte{'c', 'i', 's', 4, 9, 0}).Read(b)
	return b
}

// Read together with BenchmarkSHA256: PutEpisode's MB/s over SHA256's is the
// fraction of raw hashing speed an upload reaches, fsync included.
func BenchmarkPutEpisode(b *testing.B) {
	body := benchBody()
	sha := digest(body)
	dir := b.TempDir()
	s, err := Open(dir, Options{Logger: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	final := filepath.Join(dir, "episodes", "bench", sha)
	put := func() {
		res, err := s.PutEpisode(context.Background(), "bench", sha, bytes.NewReader(body), benchSize, EpisodeMeta{Episode: "bench"})
		if err != nil || !res.Created {
			b.Fatalf("created %v, err %v", res.Created, err)
		}
		b.StopTimer()
		if err := os.Remove(final); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	put() // the first upload for a host also creates and fsyncs its directory
	b.SetBytes(benchSize)
	for b.Loop() {
		put()
	}
}

// BenchmarkPutResumable is BenchmarkPutEpisode through the resumable path: the
// body written into tmp/partial/ with a checkpoint after every chunk. Side by side
// with it, the cost of the checkpoints.
func BenchmarkPutResumable(b *testing.B) {
	body := benchBody()
	sha := digest(body)
	dir := b.TempDir()
	s, err := Open(dir, Options{Logger: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	final := filepath.Join(dir, "episodes", "bench", sha)
	put := func() {
		res, err := s.PutResumable(context.Background(), Upload{Host: "bench", SHA256: sha, Body: bytes.NewReader(body),
			MaxBytes: benchSize, Meta: EpisodeMeta{Episode: "bench", Size: benchSize}})
		if err != nil || !res.Created {
			b.Fatalf("created %v, err %v", res.Created, err)
		}
		b.StopTimer()
		if err := os.Remove(final); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	put()
	b.SetBytes(benchSize)
	for b.Loop() {
		put()
	}
}

func BenchmarkSHA256(b *testing.B) {
	body := benchBody()
	b.SetBytes(benchSize)
	for b.Loop() {
		sha256.Sum256(body)
	}
}

// BenchmarkCheckpoint is what each full chunk of a resumable upload costs beyond
// PutEpisode's work: the hash state marshalled, the bookkeeping, and the state
// file's pwrite. Against the time one chunk takes to hash (BenchmarkSHA256).
func BenchmarkCheckpoint(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "x.state"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	c := &checkpoints{f: f, holder: &partialHolder{}, rec: partialRecord{Version: recordVersion, Host: "bench", SHA256: digest(nil)}}
	h := sha256.New()
	end := int64(0)
	for b.Loop() {
		end += chunkSize
		c.dispatched(end)
		c.hashed(end, h)
		c.written(end)
	}
}
