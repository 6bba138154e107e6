package release

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func runtimeArch() string { return runtime.GOARCH }

func uploadOf(t *testing.T, dir string) (Upload, []byte) {
	t.Helper()
	u, err := LoadUpload(dir)
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, u.Write(&buf))
	assert.Equal(t, u.Size(), int64(buf.Len()), "Size is the stream's exact length")
	return u, buf.Bytes()
}

// leftovers lists what is in the data folder besides published releases.
func leftovers(t *testing.T, dataDir string) []string {
	t.Helper()
	var out []string
	for _, sub := range []string{"tmp", "releases"} {
		entries, _ := os.ReadDir(filepath.Join(dataDir, sub))
		for _, e := range entries {
			if sub == "releases" && validCommitDir(e.Name()) {
				continue
			}
			out = append(out, sub+"/"+e.Name())
		}
	}
	return out
}

func TestPutPublishesARelease(t *testing.T) {
	dir, keys, _ := signedDist(t, 7)
	u, body := uploadOf(t, dir)
	data := t.TempDir()
	s := OpenStore(data)

	m, created, err := s.Put(t.Context(), testCommit, bytes.NewReader(body), PutOptions{Keys: keys})
	require.NoError(t, err)
	assert.True(t, created)
	assert.Equal(t, int64(7), m.Seq)
	assert.Empty(t, leftovers(t, data))

	for _, tg := range u.Manifest.Targets {
		p, err := s.FilePath(testCommit, tg.File)
		require.NoError(t, err)
		sum, _, err := HashFile(p)
		require.NoError(t, err)
		assert.Equal(t, tg.SHA256, sum)
	}
	got, err := s.Get(testCommit)
	require.NoError(t, err)
	assert.Equal(t, u.Raw, got.Raw)
	assert.Equal(t, string(u.Sig), got.Signature)
	_, err = Verify(got.Raw, []byte(got.Signature), keys)
	require.NoError(t, err)

	t.Run("again: already published", func(t *testing.T) {
		_, created, err := s.Put(t.Context(), testCommit, bytes.NewReader(body), PutOptions{Keys: keys})
		require.NoError(t, err)
		assert.False(t, created)
		assert.Empty(t, leftovers(t, data))
	})
	t.Run("another release of the same commit", func(t *testing.T) {
		other, both, _ := signedDistWith(t, 8, keys)
		_, body2 := uploadOf(t, other)
		_, _, err := s.Put(t.Context(), testCommit, bytes.NewReader(body2), PutOptions{Keys: both})
		require.ErrorIs(t, err, ErrConflict)
		got, _ := s.Get(testCommit)
		assert.Equal(t, int64(7), got.Seq)
		assert.Empty(t, leftovers(t, data))
	})
	rels, skipped, err := s.List()
	require.NoError(t, err)
	assert.Empty(t, skipped)
	require.Len(t, rels, 1)
	assert.Equal(t, testCommit, rels[0].Commit)
}

// signedDistWith signs a new fake dist of testCommit with seq, by a key that keys
// trusts after it is added.
func signedDistWith(t *testing.T, seq int64, keys Keys) (string, Keys, SecretKey) {
	dir, k, key := signedDist(t, seq)
	return dir, append(keys, k...), key
}

func TestConcurrentPutsStoreOneCopy(t *testing.T) {
	dir, keys, _ := signedDist(t, 7)
	_, body := uploadOf(t, dir)
	data := t.TempDir()
	s := OpenStore(data)
	var wg sync.WaitGroup
	created := make([]bool, 8)
	errs := make([]error, 8)
	for i := range created {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, created[i], errs[i] = s.Put(t.Context(), testCommit, bytes.NewReader(body), PutOptions{Keys: keys})
		}()
	}
	wg.Wait()
	n := 0
	for i := range created {
		require.NoError(t, errs[i])
		if created[i] {
			n++
		}
	}
	assert.Equal(t, 1, n, "one upload creates, the others find it published")
	assert.Empty(t, leftovers(t, data))
}

// rewrite rebuilds an upload's tar stream, letting edit change each entry.
func rewrite(t *testing.T, body []byte, edit func(h *tar.Header, data []byte) (*tar.Header, []byte)) []byte {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(body))
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		data, err := io.ReadAll(tr)
		require.NoError(t, err)
		h, data = edit(h, data)
		if h == nil {
			continue
		}
		h.Size = int64(len(data))
		require.NoError(t, tw.WriteHeader(h))
		_, err = tw.Write(data)
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	return out.Bytes()
}

func TestPutRefusesBadUploads(t *testing.T) {
	dir, keys, _ := signedDist(t, 7)
	u, body := uploadOf(t, dir)
	_, stranger, _ := newKey(t)
	first := u.Manifest.Targets[0].File

	for name, tc := range map[string]struct {
		body    []byte
		commit  string
		opts    PutOptions
		want    error
		message string
	}{
		"signed by an unknown key": {body: body, opts: PutOptions{Keys: stranger}, want: ErrBadSignature},
		"a tampered manifest": {body: rewrite(t, body, func(h *tar.Header, d []byte) (*tar.Header, []byte) {
			if h.Name == ManifestName {
				d = bytes.Replace(d, []byte(`"version": "1.2.3"`), []byte(`"version": "6.6.6"`), 1)
			}
			return h, d
		}), want: ErrBadSignature},
		"a tampered binary": {body: rewrite(t, body, func(h *tar.Header, d []byte) (*tar.Header, []byte) {
			if h.Name == first {
				d = bytes.Clone(d)
				d[0] ^= 1
			}
			return h, d
		}), want: ErrDigest, message: "SHA-256"},
		"a binary of another size": {body: rewrite(t, body, func(h *tar.Header, d []byte) (*tar.Header, []byte) {
			if h.Name == first {
				d = append(bytes.Clone(d), 'x')
			}
			return h, d
		}), want: ErrDigest, message: "bytes"},
		"a binary missing": {body: rewrite(t, body, func(h *tar.Header, d []byte) (*tar.Header, []byte) {
			if h.Name == first {
				return nil, nil
			}
			return h, d
		}), want: ErrBadUpload, message: "missing"},
		"an extra file": {body: rewrite(t, body, func(h *tar.Header, d []byte) (*tar.Header, []byte) {
			if h.Name == first {
				h.Name = "evil"
			}
			return h, d
		}), want: ErrBadUpload, message: "not a file of the manifest"},
		"a binary before the manifest": {body: rewrite(t, body, func(h *tar.Header, d []byte) (*tar.Header, []byte) {
			if h.Name == ManifestName {
				h.Name = first
			}
			return h, d
		}), want: ErrBadUpload, message: "must be first"},
		"cut off":             {body: body[:len(body)/2], want: ErrBadUpload},
		"not tar":             {body: []byte(strings.Repeat("hello ", 200)), want: ErrBadUpload},
		"another commit":      {body: body, commit: strings.Repeat("f", 40), want: ErrBadUpload, message: "the path names"},
		"refused by the gate": {body: body, opts: PutOptions{Allowed: func(string) bool { return false }}, want: ErrNotAllowed},
		"no room": {body: body, opts: PutOptions{CheckFree: func(n int64) error {
			return fmt.Errorf("%w: need %d", ErrNoSpace, n)
		}}, want: ErrNoSpace},
	} {
		t.Run(name, func(t *testing.T) {
			data := t.TempDir()
			if tc.opts.Keys == nil {
				tc.opts.Keys = keys
			}
			if tc.commit == "" {
				tc.commit = testCommit
			}
			_, _, err := OpenStore(data).Put(t.Context(), tc.commit, bytes.NewReader(tc.body), tc.opts)
			require.ErrorIs(t, err, tc.want)
			assert.Contains(t, err.Error(), tc.message)
			assert.NoDirExists(t, filepath.Join(data, "releases", testCommit))
			assert.Empty(t, leftovers(t, data), "nothing is left behind")
		})
	}
}

func TestLoadUploadRefusesABinaryChangedAfterSigning(t *testing.T) {
	dir, _, _ := signedDist(t, 7)
	d, err := Discover(dir)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(d.Binaries[1].Path, []byte("changed"), 0o755))
	_, err = LoadUpload(dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "sign it again")
}

func TestFilePathRefusesOtherNames(t *testing.T) {
	s := OpenStore(t.TempDir())
	for _, tc := range [][2]string{{testCommit, "../x"}, {"../../etc", "passwd"}, {testCommit[:12], "cis490-linux-amd64"}, {testCommit, ""}} {
		_, err := s.FilePath(tc[0], tc[1])
		assert.ErrorIs(t, err, os.ErrNotExist, tc)
	}
}
