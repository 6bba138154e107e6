package update

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/gofrs/flock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/release"
	"github.com/cis490/cis490/internal/release/releasetest"
	"github.com/cis490/cis490/internal/testutil"
)

func with(checks map[string]string, edits map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range checks {
		out[k] = v
	}
	for k, v := range edits {
		out[k] = v
	}
	return out
}

var newer = fake{commit: commitB, checks: with(healthy, map[string]string{"commit-allowed": "ok"})}

func TestUpdateSwitchesAndKeepsThePrevious(t *testing.T) {
	h := newHost(t, fake{commit: commitA, checks: healthy})
	h.publish(newer, 5, h.key)

	res, err := h.run(func(o *Options) { o.Check = true })
	require.NoError(t, err)
	assert.Contains(t, res.Plan, "would update")
	assert.Equal(t, commitA, h.installed(), "--check changes nothing")
	assert.NoFileExists(t, filepath.Join(h.cfg.Update.StateDir, StateFile))

	res, err = h.run()
	require.NoError(t, err)
	assert.Equal(t, ResultUpdated, res.State.Result)
	assert.Equal(t, commitB, h.installed())
	st, _ := os.Stat(h.bin)
	assert.Equal(t, os.FileMode(0o755), st.Mode().Perm())
	prev, err := os.ReadFile(filepath.Join(h.cfg.Update.StateDir, previousFile))
	require.NoError(t, err)
	assert.Equal(t, h.oldData, prev, "the previous binary is kept for rollback")
	s := h.state()
	assert.Equal(t, ResultUpdated, s.Result)
	assert.Equal(t, commitA, s.CommitBefore)
	assert.Equal(t, commitB, s.CommitAfter)
	assert.Equal(t, int64(5), s.AppliedSeq)
	assert.Nil(t, s.Pending)
	assert.Empty(t, h.temps())

	res, err = h.run(func(o *Options) { o.Running = commitB })
	require.NoError(t, err)
	assert.Equal(t, ResultUpToDate, res.State.Result, "nothing to do on the target")
}

func TestRollbackWhenDoctorGetsWorse(t *testing.T) {
	h := newHost(t, fake{commit: commitA, checks: healthy})
	broken := fake{commit: commitB, checks: with(healthy, map[string]string{"token": "fail", "commit-allowed": "ok"})}
	h.publish(broken, 5, h.key)

	_, err := h.run()
	require.ErrorIs(t, err, ErrRolledBack)
	assert.Contains(t, err.Error(), "token")
	assert.Equal(t, commitA, h.installed(), "back on the old binary")
	got, _ := os.ReadFile(h.bin)
	assert.Equal(t, h.oldData, got)
	s := h.state()
	assert.Equal(t, ResultRolledBack, s.Result)
	require.NotNil(t, s.Bad)
	assert.Equal(t, commitB, s.Bad.Commit)
	assert.Empty(t, h.temps())

	_, err = h.run()
	require.ErrorIs(t, err, ErrRefused, "marked bad until a higher seq")
	assert.Contains(t, err.Error(), "rolled back on this host")
	assert.Equal(t, commitA, h.installed())

	h.publish(newer2(), 6, h.key)
	res, err := h.run()
	require.NoError(t, err)
	assert.Equal(t, ResultUpdated, res.State.Result)
	assert.Nil(t, h.state().Bad, "a higher seq clears the mark")
}

func newer2() fake { return fake{commit: commitC, checks: newer.checks} }

func TestAnOutageThatFailsBothDoesNotRollBack(t *testing.T) {
	down := with(healthy, map[string]string{"receiver-reachable": "fail", "token": "fail"})
	h := newHost(t, fake{commit: commitA, checks: down})
	h.publish(fake{commit: commitB, checks: down}, 5, h.key)
	res, err := h.run()
	require.NoError(t, err)
	assert.Equal(t, ResultUpdated, res.State.Result)
	assert.Equal(t, commitB, h.installed())
}

func TestRefusals(t *testing.T) {
	for name, tc := range map[string]struct {
		setup func(h *host)
		edit  func(o *Options)
		want  string
	}{
		"wrong architecture": {
			setup: func(h *host) { h.publish(newer, 5, h.key) },
			edit:  func(o *Options) { o.GOOS, o.GOARCH, o.GOARM = "linux", "arm64", "" },
			want:  "this host runs linux/arm64",
		},
		"armv6 is not armv7": {
			setup: func(h *host) { h.publish(newer, 5, h.key) },
			edit:  func(o *Options) { o.GOOS, o.GOARCH, o.GOARM = "linux", "arm", "6" },
			want:  "this host runs linux/arm/v6",
		},
		"signed by another key": {
			setup: func(h *host) {
				other := releasetest.NewKey(h.t)
				h.cfg.Update.PublicKeys = other.Public // the receiver trusts h.key, this host does not
				h.publish(newer, 5, h.key)
			},
			want: "not signed by a key of update.public_keys",
		},
		"a replayed lower seq": {
			setup: func(h *host) {
				h.publish(newer, 5, h.key)
				require.NoError(h.t, os.MkdirAll(h.cfg.Update.StateDir, 0o755))
				require.NoError(h.t, writeState(h.cfg.Update.StateDir, State{AppliedSeq: 9, AppliedCommit: commitC}))
			},
			want: "lower than seq 9",
		},
		"a new binary that fails version": {
			setup: func(h *host) { h.publish(fake{commit: commitB, versionFails: true}, 5, h.key) },
			want:  "smoke test",
		},
		"a binary that names another commit": {
			setup: func(h *host) { h.publish(fake{commit: commitB}, 5, h.key) },
			edit:  func(o *Options) { o.To = commitC },
			want:  "no release of commit " + commitC,
		},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHost(t, fake{commit: commitA, checks: healthy})
			tc.setup(h)
			o := h.opts()
			if tc.edit != nil {
				tc.edit(&o)
			}
			_, err := Run(context.Background(), o)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Equal(t, commitA, h.installed(), "nothing changed")
			got, _ := os.ReadFile(h.bin)
			assert.Equal(t, h.oldData, got)
			assert.Empty(t, h.temps())
			s := h.state()
			assert.Contains(t, []string{ResultRefused, ResultFailed}, s.Result)
			assert.Contains(t, s.Reason, tc.want)
		})
	}
}

func TestAllowDowngrade(t *testing.T) {
	h := newHost(t, fake{commit: commitA, checks: healthy})
	h.publish(newer, 5, h.key)
	require.NoError(t, os.MkdirAll(h.cfg.Update.StateDir, 0o755))
	require.NoError(t, writeState(h.cfg.Update.StateDir, State{AppliedSeq: 9}))
	res, err := h.run(func(o *Options) { o.AllowDowngrade = true })
	require.NoError(t, err)
	assert.Equal(t, ResultUpdated, res.State.Result)
	assert.Equal(t, int64(9), h.state().AppliedSeq, "the highest seq applied stays")
}

func TestTamperedBinaryOnTheReceiver(t *testing.T) {
	h := newHost(t, fake{commit: commitA, checks: healthy})
	m := h.publish(newer, 5, h.key)
	tg, err := m.Pick("linux", runtime.GOARCH, release.RunningGOARM())
	require.NoError(t, err)
	path := filepath.Join(h.data, "releases", commitB, tg.File)
	data, _ := os.ReadFile(path)
	data[len(data)-2] ^= 1
	require.NoError(t, os.WriteFile(path, data, 0o755))
	_, err = h.run()
	require.ErrorIs(t, err, ErrDownload)
	assert.Contains(t, err.Error(), "corrupt or was tampered with")
	assert.Equal(t, commitA, h.installed())
	assert.Empty(t, h.temps())
}

// A proxy that cuts the first download after a few bytes: the update resumes it with
// a Range request and ends with the whole, right binary.
func TestInterruptedDownloadResumes(t *testing.T) {
	h := newHost(t, fake{commit: commitA, checks: healthy})
	h.publish(newer, 5, h.key)
	target, _ := url.Parse(h.url)
	var cut atomic.Bool
	var ranges atomic.Int32
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Range") != "" {
			ranges.Add(1)
		}
		if strings.Contains(r.URL.Path, "/cis490-") && cut.CompareAndSwap(false, true) {
			rec := httptest.NewRecorder()
			proxy.ServeHTTP(rec, r)
			w.Header().Set("Content-Length", rec.Header().Get("Content-Length"))
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes()[:700])
			w.(http.Flusher).Flush()    // the 700 bytes leave, then
			panic(http.ErrAbortHandler) // the connection drops mid-body
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	h.cfg.Receiver.URL = front.URL
	res, err := h.run()
	require.NoError(t, err)
	assert.Equal(t, ResultUpdated, res.State.Result)
	assert.True(t, cut.Load())
	assert.Equal(t, int32(1), ranges.Load(), "resumed once, from where it stopped")
	assert.Equal(t, commitB, h.installed())
}

func TestTwoRunsAtOnce(t *testing.T) {
	h := newHost(t, fake{commit: commitA, checks: healthy})
	h.publish(newer, 5, h.key)
	require.NoError(t, os.MkdirAll(h.cfg.Update.StateDir, 0o755))
	l := flock.New(filepath.Join(h.cfg.Update.StateDir, lockFile))
	ok, err := l.TryLock()
	require.NoError(t, err)
	require.True(t, ok)
	_, err = h.run()
	require.ErrorIs(t, err, ErrLocked)
	assert.Equal(t, commitA, h.installed())
	require.NoError(t, l.Unlock())
	_, err = h.run()
	require.NoError(t, err)
}

func TestNoKeysNoUpdate(t *testing.T) {
	h := newHost(t, fake{commit: commitA, checks: healthy})
	h.cfg.Update.PublicKeys = ""
	_, err := h.run()
	require.ErrorIs(t, err, ErrNoKeys)
}

// A full disk while downloading: the old binary stays, nothing partial is left.
func TestDiskFullDuringDownload(t *testing.T) {
	h := newHost(t, fake{commit: commitA, checks: healthy})
	h.publish(newer, 5, h.key)
	mnt := testutil.Tmpfs(t, 1<<20)
	bin := filepath.Join(mnt, "cis490")
	require.NoError(t, os.WriteFile(bin, h.oldData, 0o755))
	testutil.FillDisk(t, mnt)
	_, err := h.run(func(o *Options) { o.Binary = bin })
	require.Error(t, err)
	assert.True(t, errors.Is(err, syscall.ENOSPC), err.Error())
	got, _ := os.ReadFile(bin)
	assert.Equal(t, h.oldData, got)
	left, _ := filepath.Glob(filepath.Join(mnt, ".cis490.update-*"))
	assert.Empty(t, left)
	assert.Equal(t, ResultFailed, h.state().Result)
}

func TestProgressSeesEveryByte(t *testing.T) {
	h := newHost(t, fake{commit: commitA, checks: healthy})
	m := h.publish(newer, 5, h.key)
	var seen int64
	var size int64
	_, err := h.run(func(o *Options) {
		o.Progress = func(n int64) io.Writer { size = n; return writerFunc(func(p []byte) { seen += int64(len(p)) }) }
	})
	require.NoError(t, err)
	tg, err := m.Pick("linux", runtime.GOARCH, release.RunningGOARM())
	require.NoError(t, err)
	assert.Equal(t, tg.Size, size)
	assert.Equal(t, size, seen)
	assert.Positive(t, seen)
}

type writerFunc func([]byte)

func (f writerFunc) Write(p []byte) (int, error) { f(p); return len(p), nil }
