package objstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/objstore"
	"github.com/cis490/cis490/internal/objstore/objstoretest"
	"github.com/cis490/cis490/internal/store"
	"github.com/cis490/cis490/internal/testpki"
)

const host = "lab-07"

func body(t testing.TB, n int) ([]byte, string) {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	sum := sha256.Sum256(b)
	return b, hex.EncodeToString(sum[:])
}

// open starts a Store on tg with a 5 MiB part, sending bodies of known length up to
// singlePutMax as one PutObject.
func open(t *testing.T, tg *objstoretest.Target, opts objstore.Options, singlePutMax config.ByteSize) *objstore.Store {
	t.Helper()
	cfg := tg.Storage(t, "pi-1/")
	cfg.PartSize = 5 << 20
	cfg.SinglePutMax = singlePutMax
	opts.Logger = zerolog.New(zerolog.NewTestWriter(t))
	st, err := objstore.New(cfg, opts)
	require.NoError(t, err)
	require.NoError(t, st.Start(t.Context()))
	t.Cleanup(st.Close)
	return st
}

// eachMode runs test against each server of objstoretest.Servers (versitygw; SeaweedFS
// in its job), with multipart uploads only, and with single PutObjects for bodies of
// known length (where the server checks checksums; multipart where it does not).
func eachMode(t *testing.T, test func(t *testing.T, tg *objstoretest.Target, singlePutMax config.ByteSize)) {
	for _, m := range []struct {
		name string
		max  config.ByteSize
	}{{"multipart", 0}, {"single put", 5 * config.GiB}} {
		t.Run(m.name, func(t *testing.T) {
			objstoretest.Each(t, func(t *testing.T, tg *objstoretest.Target) { test(t, tg, m.max) })
		})
	}
}

func meta(name string, size int64) store.EpisodeMeta {
	return store.EpisodeMeta{Episode: name, Size: size, ReceivedAt: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC), Commit: "abc123", Remote: "192.0.2.7:4711"}
}

func TestPutCreatedThenDuplicate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		size    int
		chunked bool
	}{
		{"one part", 1000, false},
		{"three parts", 12 << 20, false},
		{"exactly two parts", 10 << 20, false},
		{"chunked, three parts", 12 << 20, true},
		{"chunked, small", 1000, true},
		{"empty", 0, false},
		{"chunked, empty", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eachMode(t, func(t *testing.T, tg *objstoretest.Target, singlePutMax config.ByteSize) {
				st := open(t, tg, objstore.Options{}, singlePutMax)
				data, sha := body(t, tc.size)
				declared := int64(len(data))
				if tc.chunked {
					declared = -1
				}
				res, err := st.PutEpisode(t.Context(), host, sha, bytes.NewReader(data), 64<<20, meta("ep-1.tar", declared))
				require.NoError(t, err)
				assert.True(t, res.Created)
				assert.Equal(t, int64(len(data)), res.Size)

				key := "pi-1/episodes/lab-07/" + sha
				assert.Equal(t, []string{key, key + ".json"}, tg.Keys(t, "pi-1/"))
				assert.True(t, bytes.Equal(data, tg.Get(t, key)), "the object is the body")
				var side store.EpisodeMeta
				require.NoError(t, json.Unmarshal(tg.Get(t, key+".json"), &side))
				assert.Equal(t, store.EpisodeMeta{Episode: "ep-1.tar", Size: int64(len(data)), ReceivedAt: meta("", 0).ReceivedAt, Commit: "abc123", Remote: "192.0.2.7:4711"}, side)
				md := tg.Metadata(t, key)
				assert.Equal(t, "ep-1.tar", md["cis490-episode"])
				assert.Empty(t, tg.Multiparts(t, "pi-1/"))

				dup, ok, err := st.Stored(t.Context(), host, sha, meta("other-name", 5))
				require.NoError(t, err)
				require.True(t, ok)
				assert.Equal(t, "ep-1.tar", dup.Episode, "the first upload's name")
				assert.Equal(t, int64(len(data)), dup.Size)
				assert.False(t, dup.Created)
				assert.True(t, st.Has(t.Context(), host, sha))

				again, err := st.PutEpisode(t.Context(), host, sha, bytes.NewReader(data), 64<<20, meta("ep-1.tar", declared))
				require.NoError(t, err)
				assert.False(t, again.Created, "a second whole upload is a duplicate")
				assert.Empty(t, tg.Multiparts(t, "pi-1/"))
			})
		})
	}
}

func TestConcurrentIdenticalUploadsStoreOneAndCreateOnce(t *testing.T) {
	for _, fallback := range []bool{false, true} {
		name := "conditional writes"
		if fallback {
			name = "lock fallback"
		}
		t.Run(name, func(t *testing.T) {
			eachMode(t, func(t *testing.T, tg *objstoretest.Target, singlePutMax config.ByteSize) {
				st := open(t, tg, objstore.Options{NoConditionalWrites: fallback}, singlePutMax)
				if fallback {
					assert.False(t, st.Health().ConditionalWrites)
				}
				data, sha := body(t, 6<<20)
				const n = 20
				results := make([]store.PutResult, n)
				errs := make([]error, n)
				var wg sync.WaitGroup
				for i := range n {
					wg.Go(func() {
						results[i], errs[i] = st.PutEpisode(context.Background(), host, sha, bytes.NewReader(data), 64<<20, meta("ep", int64(len(data))))
					})
				}
				wg.Wait()
				created := 0
				for i := range n {
					require.NoError(t, errs[i], "upload %d", i)
					if results[i].Created {
						created++
					}
					assert.Equal(t, int64(len(data)), results[i].Size)
				}
				assert.Equal(t, 1, created, "exactly one upload is created")
				key := "pi-1/episodes/lab-07/" + sha
				assert.Equal(t, []string{key, key + ".json"}, tg.Keys(t, "pi-1/"))
				assert.True(t, bytes.Equal(data, tg.Get(t, key)))
				assert.Empty(t, tg.Multiparts(t, "pi-1/"), "every losing upload was aborted")
			})
		})
	}
}

func TestRefusedBodiesLeaveNothing(t *testing.T) {
	eachMode(t, func(t *testing.T, tg *objstoretest.Target, singlePutMax config.ByteSize) {
		st := open(t, tg, objstore.Options{}, singlePutMax)
		data, sha := body(t, 12<<20)
		_, other := body(t, 10)
		for _, tc := range []struct {
			name     string
			body     io.Reader
			declared int64
			sha      string
			max      int64
			want     error
		}{
			{"digest mismatch", bytes.NewReader(data), int64(len(data)), other, 64 << 20, store.ErrDigestMismatch},
			{"digest mismatch, chunked", bytes.NewReader(data), -1, other, 64 << 20, store.ErrDigestMismatch},
			{"too large, declared", bytes.NewReader(data), int64(len(data)), sha, 1 << 20, store.ErrTooLarge},
			{"too large, chunked", bytes.NewReader(data), -1, sha, 6 << 20, store.ErrTooLarge},
			{"cut mid-body", io.LimitReader(bytes.NewReader(data), 7<<20), int64(len(data)), sha, 64 << 20, io.ErrUnexpectedEOF},
			{"client error mid-body", io.MultiReader(io.LimitReader(bytes.NewReader(data), 6<<20), iotest.ErrReader(errClientGone)), int64(len(data)), sha, 64 << 20, errClientGone},
			{"client error mid-body, chunked", io.MultiReader(io.LimitReader(bytes.NewReader(data), 6<<20), iotest.ErrReader(errClientGone)), -1, sha, 64 << 20, errClientGone},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := st.PutEpisode(t.Context(), host, tc.sha, tc.body, tc.max, meta("ep", tc.declared))
				require.ErrorIs(t, err, tc.want)
				assert.NotErrorIs(t, err, store.ErrUnavailable, "the body's fault, not the store's")
				assert.Empty(t, tg.Keys(t, "pi-1/"), "no object")
				assert.Empty(t, tg.Multiparts(t, "pi-1/"), "no incomplete multipart upload")
				assert.True(t, st.Health().OK, "the store did nothing wrong")
			})
		}
	})
}

var errClientGone = errors.New("client went away")

func TestContextCancelledMidBodyAborts(t *testing.T) {
	eachMode(t, func(t *testing.T, tg *objstoretest.Target, singlePutMax config.ByteSize) {
		st := open(t, tg, objstore.Options{}, singlePutMax)
		data, sha := body(t, 12<<20)
		ctx, cancel := context.WithCancel(t.Context())
		r := &cancelAfter{r: bytes.NewReader(data), n: 7 << 20, cancel: cancel}
		_, err := st.PutEpisode(ctx, host, sha, r, 64<<20, meta("ep", int64(len(data))))
		require.Error(t, err)
		assert.ErrorIs(t, err, context.Canceled)
		assert.Empty(t, tg.Keys(t, "pi-1/"))
		assert.Empty(t, tg.Multiparts(t, "pi-1/"))
	})
}

// cancelAfter cancels its context once n bytes were read, then blocks like a client
// that stopped sending until the context's end reaches the request.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
	read   int
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	if c.read >= c.n {
		c.cancel()
		return 0, context.Canceled
	}
	n, err := c.r.Read(p[:min(len(p), c.n-c.read)])
	c.read += n
	return n, err
}

func TestMissingSidecarIsWrittenByARetry(t *testing.T) {
	objstoretest.Each(t, func(t *testing.T, tg *objstoretest.Target) {
		st := open(t, tg, objstore.Options{}, 0)
		data, sha := body(t, 1000)
		_, err := st.PutEpisode(t.Context(), host, sha, bytes.NewReader(data), 64<<20, meta("ep-1", int64(len(data))))
		require.NoError(t, err)
		key := "pi-1/episodes/lab-07/" + sha
		want := tg.Get(t, key+".json")
		_, err = tg.Client().DeleteObject(t.Context(), deleteInput(tg, key+".json"))
		require.NoError(t, err)

		res, ok, err := st.Stored(t.Context(), host, sha, meta("retry-name", 1))
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, "ep-1", res.Episode, "from the object's metadata, not the retry")
		assert.JSONEq(t, string(want), string(tg.Get(t, key+".json")), "the same sidecar as the upload wrote")
	})
}

func TestObjectWithoutOurMetadataTakesTheRetrysName(t *testing.T) {
	objstoretest.Each(t, func(t *testing.T, tg *objstoretest.Target) {
		st := open(t, tg, objstore.Options{}, 0)
		data, sha := body(t, 1000)
		key := "pi-1/episodes/lab-07/" + sha
		tg.Put(t, key, data)
		res, ok, err := st.Stored(t.Context(), host, sha, meta("retry-name", 1))
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, "retry-name", res.Episode)
		var side store.EpisodeMeta
		require.NoError(t, json.Unmarshal(tg.Get(t, key+".json"), &side))
		assert.True(t, side.Repaired)
		assert.Equal(t, "retry-name", side.Episode)
		assert.Equal(t, int64(1000), side.Size)
	})
}

func TestSweepAbortsStaleMultipartUploadsOnly(t *testing.T) {
	objstoretest.Each(t, func(t *testing.T, tg *objstoretest.Target) {
		old := tg.StartMultipart(t, "pi-1/episodes/lab-07/"+hex.EncodeToString(make([]byte, 32)))
		require.NotEmpty(t, old)
		tg.StartMultipart(t, "elsewhere/x") // not ours: outside the prefix
		// Atomic: the start's own sweep reads the clock meanwhile.
		var offset atomic.Int64
		clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
		st := open(t, tg, objstore.Options{Now: clock, SweepEvery: time.Hour}, 0)
		n, err := st.SweepStale(t.Context())
		require.NoError(t, err)
		assert.Equal(t, 0, n, "a fresh upload is left alone")
		assert.Len(t, tg.Multiparts(t, "pi-1/"), 1)

		offset.Store(int64(61 * time.Minute))
		n, err = st.SweepStale(t.Context())
		require.NoError(t, err)
		assert.Equal(t, 1, n)
		assert.Empty(t, tg.Multiparts(t, "pi-1/"))
		assert.Equal(t, []string{"elsewhere/x"}, tg.Multiparts(t, ""), "outside the prefix, kept")
	})
}

func deleteInput(tg *objstoretest.Target, key string) *s3.DeleteObjectInput {
	return &s3.DeleteObjectInput{Bucket: &tg.Bucket, Key: &key}
}

func TestCheckAndACleanStart(t *testing.T) {
	objstoretest.Each(t, func(t *testing.T, tg *objstoretest.Target) {
		var failed []string
		var mu sync.Mutex
		st := open(t, tg, objstore.Options{OnError: func(op string) { mu.Lock(); failed = append(failed, op); mu.Unlock() }}, 5*config.GiB)
		c := st.Check(t.Context())
		require.NoError(t, c.Err)
		assert.True(t, c.Reachable)
		assert.True(t, c.Writable)
		if tg.Name == "versitygw" {
			assert.Equal(t, objstore.Check{Server: "VERSITYGW", Reachable: true, Writable: true, ConditionalWrites: true, Checksums: true}, c)
		}
		t.Logf("%s: %+v", tg.Name, c)
		h := st.Health()
		assert.True(t, h.OK)
		assert.True(t, h.Ready)
		assert.Equal(t, c.ConditionalWrites, h.ConditionalWrites)
		assert.Equal(t, c.Checksums, h.Checksums)
		assert.False(t, h.LastOK.IsZero())
		mu.Lock()
		assert.Empty(t, failed, "a healthy store's probe fails no request")
		mu.Unlock()
		assert.Empty(t, tg.Keys(t, ""), "the probe cleans up")
		assert.Empty(t, tg.Multiparts(t, ""))
	})
}

func TestUnreachableStoreIsUnavailable(t *testing.T) {
	tg := objstoretest.Versitygw(t)
	tg.Stop(t)
	cfg := tg.Storage(t, "pi-1/")
	st, err := objstore.New(cfg, objstore.Options{Logger: zerolog.New(zerolog.NewTestWriter(t))})
	require.NoError(t, err, "New makes no request")
	t.Cleanup(st.Close)
	err = st.Start(t.Context())
	require.ErrorIs(t, err, store.ErrUnavailable, "start says so, and the receiver starts all the same")
	assert.False(t, st.Health().Ready)
	assert.False(t, st.Health().OK)
	assert.False(t, st.Health().FailingSince.IsZero())
	assert.NotEmpty(t, st.Health().LastError)

	data, sha := body(t, 100)
	_, err = st.PutEpisode(t.Context(), host, sha, bytes.NewReader(data), 1<<20, meta("ep", 100))
	assert.ErrorIs(t, err, store.ErrUnavailable)
	_, _, err = st.Stored(t.Context(), host, sha, meta("ep", 100))
	assert.ErrorIs(t, err, store.ErrUnavailable)
	c := st.Check(t.Context())
	assert.False(t, c.Reachable)
	assert.ErrorIs(t, c.Err, store.ErrUnavailable)
}

func TestWrongSecretNeverInAnError(t *testing.T) {
	objstoretest.Each(t, func(t *testing.T, tg *objstoretest.Target) {
		cfg := tg.Storage(t, "pi-1/")
		wrong := "wrong-secret-" + hex.EncodeToString([]byte("xyz"))
		require.NoError(t, os.WriteFile(cfg.CredentialsFile, []byte("[default]\naws_access_key_id = "+tg.Access+"\naws_secret_access_key = "+wrong+"\n"), 0o600))
		var logs bytes.Buffer
		st, err := objstore.New(cfg, objstore.Options{Logger: zerolog.New(&syncWriter{w: &logs})})
		require.NoError(t, err)
		t.Cleanup(st.Close)
		err = st.Start(t.Context())
		require.ErrorIs(t, err, store.ErrUnavailable, "refused: the store is unusable until the key is fixed")
		assert.NotContains(t, err.Error(), wrong)
		assert.NotContains(t, logs.String(), wrong)
		assert.NotContains(t, st.Health().LastError, wrong)
	})
}

func TestCredentialsFileErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, body, profile, want string }{
		{"no section", "aws_access_key_id = a\n", "default", "no [default] section"},
		{"no secret", "[default]\naws_access_key_id = a\n", "default", "[default]: no aws_access_key_id and aws_secret_access_key"},
		{"other profile", "[default]\naws_access_key_id = a\naws_secret_access_key = hush-secret\n", "lab", "no [lab] section"},
		{"garbled", "[default]\naws_secret_access_key hush-secret\n", "default", "line 2: want key = value"},
		{"open header", "[default\n", "default", "line 1: a section header is [name]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := dir + "/" + strings.ReplaceAll(tc.name, " ", "-")
			require.NoError(t, os.WriteFile(path, []byte(tc.body), 0o600))
			cfg := config.Default().Serve.Storage
			cfg.Backend, cfg.Bucket, cfg.CredentialsFile, cfg.Profile = config.BackendS3, "b", path, tc.profile
			_, err := objstore.New(cfg, objstore.Options{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, err.Error(), path, "names the file")
			assert.NotContains(t, err.Error(), "hush-secret")
		})
	}
	cfg := config.Default().Serve.Storage
	cfg.Backend, cfg.Bucket, cfg.CredentialsFile = config.BackendS3, "b", dir+"/absent"
	_, err := objstore.New(cfg, objstore.Options{})
	assert.ErrorContains(t, err, "serve.storage.credentials_file")

	profiles := dir + "/profiles"
	require.NoError(t, os.WriteFile(profiles, []byte("[default]\naws_access_key_id = a\naws_secret_access_key = b\n[profile lab]\naws_access_key_id = c\naws_secret_access_key = d\n"), 0o600))
	cfg.CredentialsFile, cfg.Profile = profiles, "lab"
	_, err = objstore.New(cfg, objstore.Options{})
	assert.NoError(t, err, "[profile lab] as in ~/.aws/config")
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func TestTLSStoreWithCAFile(t *testing.T) {
	ca := testpki.NewCA(t, "store")
	pair := ca.Server("store")
	tg := objstoretest.VersitygwTLS(t, pair.CertFile, pair.KeyFile, ca.CertPEM)
	require.True(t, strings.HasPrefix(tg.Endpoint, "https://"))
	for _, singlePutMax := range []config.ByteSize{0, 5 * config.GiB} {
		st := open(t, tg, objstore.Options{}, singlePutMax)
		data, sha := body(t, 6<<20)
		res, err := st.PutEpisode(t.Context(), host, sha, bytes.NewReader(data), 64<<20, meta("ep", int64(len(data))))
		require.NoError(t, err, "single_put_max %v", singlePutMax)
		assert.True(t, res.Created)
		assert.True(t, bytes.Equal(data, tg.Get(t, "pi-1/episodes/lab-07/"+sha)))
		_, err = tg.Client().DeleteObject(t.Context(), deleteInput(tg, "pi-1/episodes/lab-07/"+sha))
		require.NoError(t, err)
	}

	cfg := tg.Storage(t, "pi-1/")
	cfg.CAFile = "" // the system's CAs do not know this one
	st, err := objstore.New(cfg, objstore.Options{Logger: zerolog.New(zerolog.NewTestWriter(t))})
	require.NoError(t, err)
	t.Cleanup(st.Close)
	err = st.Start(t.Context())
	require.ErrorIs(t, err, store.ErrUnavailable)
	assert.Contains(t, err.Error(), "certificate")
}

// cancelAtEOF cancels its context as soon as the body has been read to its end, as
// net/http does to a receiver's request once the background read after the body hits
// the read deadline the stall timeout set (issue 15: three of twenty identical
// uploads answered 400 "cut off" against SeaweedFS, whose completions are slower).
type cancelAtEOF struct {
	r      io.Reader
	cancel context.CancelFunc
}

func (c *cancelAtEOF) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err == io.EOF {
		c.cancel()
	}
	return n, err
}

func TestRequestEndingOnceTheWholeBodyIsInStillStores(t *testing.T) {
	for _, chunked := range []bool{false, true} {
		name := "known length"
		if chunked {
			name = "chunked"
		}
		t.Run(name, func(t *testing.T) {
			objstoretest.Each(t, func(t *testing.T, tg *objstoretest.Target) {
				st := open(t, tg, objstore.Options{}, 0)
				data, sha := body(t, 12<<20)
				declared := int64(len(data))
				if chunked {
					declared = -1
				}
				put := func() (store.PutResult, error) {
					ctx, cancel := context.WithCancel(t.Context())
					defer cancel()
					r := &cancelAtEOF{r: bytes.NewReader(data), cancel: cancel}
					return st.PutEpisode(ctx, host, sha, r, 64<<20, meta("ep-1.tar", declared))
				}
				res, err := put()
				require.NoError(t, err, "the whole body arrived and matches: the request's end after it is no cut")
				assert.True(t, res.Created)
				key := "pi-1/episodes/lab-07/" + sha
				assert.Equal(t, []string{key, key + ".json"}, tg.Keys(t, "pi-1/"))
				assert.True(t, bytes.Equal(data, tg.Get(t, key)), "the object is the body, no padding")
				assert.Empty(t, tg.Multiparts(t, "pi-1/"))

				again, err := put()
				require.NoError(t, err, "a duplicate that lost the conditional completion")
				assert.False(t, again.Created)
				assert.Empty(t, tg.Multiparts(t, "pi-1/"))
			})
		})
	}
}
