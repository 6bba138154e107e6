package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// bench holds what every run shares: the streams' blocks, the concurrent uploads'
// digests, the receiver and the client.
type bench struct {
	opts    options
	root    string
	single  []byte
	conc    [][]byte
	concSHA []string
	rcv     *receiver
	client  *http.Client
	clkTck  float64
	freed   int64 // bytes of page cache freed since the last settle
	sinkURL string
}

// runResult holds one run's measurements, rates in MB/s. sha2 is two threads hashing
// at once, together: about twice sha when the machine has two free cores.
type runResult struct {
	sha, sha2, sink, disk, single, conc float64
	singleUse, concUse                  usage
}

// usage is where the CPU went during a phase: the receiver's and this client's
// seconds per GB received, and how many cores everything else kept busy meanwhile
// (other users of the machine, and the kernel's writeback threads).
type usage struct{ rcv, client, others float64 }

func newBench(opts options, root string) *bench {
	return &bench{opts: opts, root: root, client: newClient(), clkTck: clockTicks()}
}

// prepare makes the blocks (seed 1 for the single upload, 2… for the concurrent
// ones, so each upload has its own content) and hashes the concurrent streams.
func (b *bench) prepare() {
	b.single = newBlock(1)
	for i := range b.opts.concurrent {
		block := newBlock(uint64(i + 2))
		sha, _ := hashStream(newStream(block, b.opts.size))
		b.conc = append(b.conc, block)
		b.concSHA = append(b.concSHA, sha)
	}
}

func host(i int) string { return fmt.Sprintf("lab-%02d", i) }

// settle waits until the memory freed since the last settle is back with the host.
// In this kind of VM the guest kernel's free page reporting (virtio-balloon) returns
// freed memory to the host after 2 s, a batch at a time; touching it again then costs
// a host page fault per page, which the receiver pays as it fills the page cache.
// Measured here: 512 MiB written into a new file just after a delete runs at
// 4-5 GB/s, after settling at 400-550 MB/s; after freeing 2.5 GiB, 4 s is not enough
// and 16 s is. So every cold phase starts from the same state: memory the host took back.
func (b *bench) settle(ctx context.Context) error {
	d := settleBase + time.Duration(float64(settlePerGiB)*float64(b.freed)/(1<<30))
	b.freed = 0
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(min(d, settleMax)):
		return nil
	}
}

const (
	settleBase   = 3 * time.Second
	settlePerGiB = 5 * time.Second
	settleMax    = 30 * time.Second
)

func (b *bench) run(ctx context.Context, n int) (runResult, error) {
	var r runResult
	size := b.opts.size
	sha, shaRate := hashStream(newStream(b.single, size))
	r.sha = shaRate
	if !b.opts.pin { // pinned, this process has one CPU: the answer would be 1 by construction
		r.sha2 = hashTogether(b.single, b.conc[0], size)
	}
	elapsed, err := put(ctx, b.client, b.sinkURL, upload{host(0), episodeName("sink", n, 0), sha, newStream(b.single, size)})
	if err != nil {
		return r, fmt.Errorf("sink: %w", err)
	}
	r.sink = rate(size, elapsed)
	if !b.opts.warm {
		if err := b.settle(ctx); err != nil {
			return r, err
		}
	}
	disk, err := diskWrite(b.root, newStream(b.single, size))
	if err != nil {
		return r, err
	}
	r.disk = disk
	b.freed += size
	// -warm: the probe's pages were just freed and the upload reuses them; otherwise
	// wait until they are back with the host, as after any quiet moment.
	if !b.opts.warm {
		if err := b.settle(ctx); err != nil {
			return r, err
		}
	}

	base := "http://" + b.rcv.addr
	m := b.meter()
	elapsed, err = put(ctx, b.client, base, upload{host(0), episodeName("single", n, 0), sha, newStream(b.single, size)})
	if err != nil {
		return r, err
	}
	r.single = rate(size, elapsed)
	if r.singleUse, err = m.usage(size); err != nil {
		return r, err
	}

	total := int64(b.opts.concurrent) * size
	if b.opts.warm {
		_, err = diskWrite(b.root, newStream(b.single, total))
		b.freed += total
	} else {
		err = b.settle(ctx)
	}
	if err != nil {
		return r, err
	}
	m = b.meter()
	elapsed, err = b.concurrently(ctx, base, n)
	if err != nil {
		return r, err
	}
	r.conc = rate(total, elapsed)
	r.concUse, err = m.usage(total)
	return r, err
}

// concurrently starts every concurrent upload at once and returns when the last one
// has its 201; the first failure cancels the others.
func (b *bench) concurrently(ctx context.Context, base string, n int) (time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, b.opts.concurrent)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range b.opts.concurrent {
		wg.Go(func() {
			u := upload{host(i + 1), episodeName("concurrent", n, i+1), b.concSHA[i], newStream(b.conc[i], b.opts.size)}
			if _, errs[i] = put(ctx, b.client, base, u); errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	return time.Since(start), errors.Join(errs...)
}

// removeStored deletes the run's episodes (not the host folders, which the receiver
// remembers having made), so the next run's identical uploads are new again.
func (b *bench) removeStored() error {
	files, err := filepath.Glob(filepath.Join(b.rcv.dataDir, "episodes", "*", "*"))
	if err != nil {
		return err
	}
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			return err
		}
		if err := os.Remove(f); err != nil {
			return err
		}
		b.freed += st.Size()
	}
	return nil
}

// meter notes the CPU time of the receiver, of this process and of the whole
// machine at its start.
type meter struct {
	b          *bench
	start      time.Time
	rcv, total int64 // clock ticks
	self       time.Duration
}

func (b *bench) meter() meter {
	rcv, _ := cpuTime(b.rcv.pid())
	total, _ := busyTicks()
	return meter{b: b, start: time.Now(), rcv: rcv, total: total, self: selfCPU()}
}

func (m meter) usage(bytes int64) (usage, error) {
	rcv, err := cpuTime(m.b.rcv.pid())
	if err != nil {
		return usage{}, err
	}
	total, err := busyTicks()
	if err != nil {
		return usage{}, err
	}
	wall := time.Since(m.start).Seconds()
	gb := float64(bytes) / 1e9
	rcvSec := float64(rcv-m.rcv) / m.b.clkTck
	selfSec := (selfCPU() - m.self).Seconds()
	others := float64(total-m.total)/m.b.clkTck - rcvSec - selfSec
	return usage{rcv: rcvSec / gb, client: selfSec / gb, others: max(others, 0) / wall}, nil
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
