package release

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDiscoverReadsGoreleaserOutput(t *testing.T) {
	dir := fakeDist(t, strings.ToUpper(testCommit))
	parent := filepath.Dir(dir)
	require.NoError(t, os.Rename(dir, filepath.Join(parent, "release")))
	d, err := Discover(parent) // dist/, holding release/
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(parent, "release"), d.Dir)
	assert.Equal(t, testCommit, d.Commit)
	assert.Equal(t, "1.2.3", d.Version)
	var got []string
	for _, b := range d.Binaries {
		got = append(got, b.Platform()+" "+b.File)
		sum, size, err := HashFile(b.Path)
		require.NoError(t, err)
		assert.Equal(t, sum, b.SHA256)
		assert.Equal(t, size, b.Size)
	}
	assert.Equal(t, []string{"linux/amd64 cis490-linux-amd64", "linux/arm64 cis490-linux-arm64", "linux/arm/v7 cis490-linux-armv7"}, got)
}

func TestDiscoverRefusesAnUnstampedBuild(t *testing.T) {
	_, err := Discover(fakeDist(t, "none"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `recorded commit "none"`)
}

func TestSignAndVerify(t *testing.T) {
	dir, keys, _ := signedDist(t, 42)
	raw, err := os.ReadFile(filepath.Join(dir, ManifestName))
	require.NoError(t, err)
	sig, err := os.ReadFile(filepath.Join(dir, SignatureName))
	require.NoError(t, err)

	m, err := Verify(raw, sig, keys)
	require.NoError(t, err)
	assert.Equal(t, int64(42), m.Seq)
	assert.Equal(t, testCommit, m.Commit)
	assert.Len(t, m.Targets, 3)

	_, other, _ := newKey(t)
	t.Run("any of several keys", func(t *testing.T) {
		_, err := Verify(raw, sig, append(append(Keys{}, other...), keys...))
		require.NoError(t, err)
	})
	t.Run("an unknown key", func(t *testing.T) {
		_, err := Verify(raw, sig, other)
		require.ErrorIs(t, err, ErrBadSignature)
		assert.Contains(t, err.Error(), "not one of the configured keys")
	})
	t.Run("no key", func(t *testing.T) {
		_, err := Verify(raw, sig, nil)
		require.ErrorIs(t, err, ErrBadSignature)
	})
	t.Run("a tampered manifest", func(t *testing.T) {
		bad := []byte(strings.Replace(string(raw), `"seq": 42`, `"seq": 43`, 1))
		require.NotEqual(t, raw, bad)
		_, err := Verify(bad, sig, keys)
		require.ErrorIs(t, err, ErrBadSignature)
		assert.Contains(t, err.Error(), "altered")
	})
	t.Run("a tampered trusted comment", func(t *testing.T) {
		lines := strings.Split(string(sig), "\n")
		lines[2] = strings.Replace(lines[2], "seq 42", "seq 99", 1)
		_, err := Verify(raw, []byte(strings.Join(lines, "\n")), keys)
		require.ErrorIs(t, err, ErrBadSignature)
	})
	t.Run("not a signature", func(t *testing.T) {
		_, err := Verify(raw, []byte("hello"), keys)
		require.ErrorIs(t, err, ErrBadSignature)
	})
}

func TestKeygenNeverOverwrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k", "release.key")
	pub, pubPath, err := Keygen(path, "")
	require.NoError(t, err)
	assert.Equal(t, strings.TrimSuffix(path, ".key")+".pub", pubPath)
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	before, _ := os.ReadFile(path)

	_, _, err = Keygen(path, "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "already exists")
	after, _ := os.ReadFile(path)
	assert.Equal(t, before, after)

	keys, err := ParseKeys([]string{pub.String()})
	require.NoError(t, err)
	assert.Equal(t, pub.ID(), keys[0].ID())
	text, _ := os.ReadFile(pubPath)
	keys, err = ParseKeys([]string{string(text)}) // the whole .pub file
	require.NoError(t, err)
	assert.Equal(t, pub.ID(), keys[0].ID())
	_, err = ParseKeys([]string{"RWQnotakey"})
	require.Error(t, err)
}

// One encrypted key: scrypt with minisign's parameters (1 GiB, as `minisign -G`).
func TestEncryptedKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "release.key")
	pub, _, err := Keygen(path, "correct horse")
	require.NoError(t, err)
	enc, err := Encrypted(path)
	require.NoError(t, err)
	assert.True(t, enc)
	_, err = LoadSecretKey(path, "wrong")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "wrong password")
	key, err := LoadSecretKey(path, "correct horse")
	require.NoError(t, err)
	assert.Equal(t, pub.ID(), key.ID())
}

func TestManifestChecks(t *testing.T) {
	good := func() Manifest {
		return Manifest{Schema: Schema, Commit: testCommit, Version: "1", Seq: 1, Targets: []Target{
			{GOOS: "linux", GOARCH: "amd64", File: "cis490-linux-amd64", SHA256: strings.Repeat("a", 64), Size: 10},
			{GOOS: "linux", GOARCH: "arm", GOARM: "7", File: "cis490-linux-armv7", SHA256: strings.Repeat("b", 64), Size: 10},
		}}
	}
	for name, tc := range map[string]struct {
		edit func(*Manifest)
		want string
	}{
		"short commit":   {func(m *Manifest) { m.Commit = "0123456" }, "full commit id"},
		"zero seq":       {func(m *Manifest) { m.Seq = 0 }, "seq 0"},
		"schema":         {func(m *Manifest) { m.Schema = "x" }, "schema"},
		"no targets":     {func(m *Manifest) { m.Targets = nil }, "no targets"},
		"path in a name": {func(m *Manifest) { m.Targets[0].File = "../cis490" }, "plain file name"},
		"manifest name":  {func(m *Manifest) { m.Targets[0].File = ManifestName }, "plain file name"},
		"bad sha":        {func(m *Manifest) { m.Targets[0].SHA256 = "XYZ" }, "sha256"},
		"twice a file":   {func(m *Manifest) { m.Targets[1].File = m.Targets[0].File }, "twice"},
		"two of a platform": {func(m *Manifest) {
			m.Targets[1].GOARCH, m.Targets[1].GOARM = "amd64", ""
		}, "two binaries for linux/amd64"},
	} {
		t.Run(name, func(t *testing.T) {
			m := good()
			tc.edit(&m)
			data, err := m.Marshal()
			require.NoError(t, err)
			_, err = Parse(data)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	data, _ := good().Marshal()
	_, err := Parse(data)
	require.NoError(t, err)
}

func TestPickIsExact(t *testing.T) {
	m := Manifest{Commit: testCommit, Targets: []Target{
		{GOOS: "linux", GOARCH: "amd64", File: "a"},
		{GOOS: "linux", GOARCH: "arm64", File: "b"},
		{GOOS: "linux", GOARCH: "arm", GOARM: "7", File: "c"},
	}}
	got, err := m.Pick("linux", "arm", "7")
	require.NoError(t, err)
	assert.Equal(t, "c", got.File)
	_, err = m.Pick("linux", "arm", "6")
	require.ErrorIs(t, err, ErrNoTarget)
	assert.Contains(t, err.Error(), "this host runs linux/arm/v6")
	_, err = m.Pick("linux", "riscv64", "")
	require.ErrorIs(t, err, ErrNoTarget)
}

func TestCheckNativeComparesTheBinarysCommit(t *testing.T) {
	dir := t.TempDir()
	script := func(commit string) string {
		p := filepath.Join(dir, "cis490-"+commit[:4])
		require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\necho '{\"version\":\"1\",\"commit\":\""+commit+"\"}'\n"), 0o755))
		return p
	}
	native := Binary{Target: Target{GOOS: "linux", GOARCH: runtimeArch(), GOARM: RunningGOARM()}}
	native.Path = script(testCommit)
	d := Dist{Dir: dir, Commit: testCommit, Binaries: []Binary{native}}
	checked, err := d.CheckNative(t.Context())
	require.NoError(t, err)
	assert.True(t, checked)

	d.Binaries[0].Path = script("ffffffffffffffffffffffffffffffffffffffff")
	_, err = d.CheckNative(t.Context())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "rebuild the release")
}

func TestNewest(t *testing.T) {
	c := func(n byte) string { return strings.Repeat(string(n), 40) }
	rels := []Published{
		{Manifest: Manifest{Commit: c('a'), Seq: 1}},
		{Manifest: Manifest{Commit: c('b'), Seq: 5}},
		{Manifest: Manifest{Commit: c('c'), Seq: 3}},
		{Manifest: Manifest{Commit: c('d'), Seq: 9}},
	}
	all := func(string) bool { return true }
	notD := func(s string) bool { return s != c('d') }

	got, ok := Newest(rels, all, nil)
	require.True(t, ok)
	assert.Equal(t, c('d'), got.Commit, "no git ref: by seq")

	got, _ = Newest(rels, notD, nil)
	assert.Equal(t, c('b'), got.Commit, "the gate refuses d")

	pos := map[string]int{c('c'): 0, c('b'): 4, c('a'): 9}
	got, _ = Newest(rels, all, pos)
	assert.Equal(t, c('c'), got.Commit, "on the ref: by position, even with a lower seq; d is not on the ref")

	_, ok = Newest(rels, func(string) bool { return false }, pos)
	assert.False(t, ok)
}

func TestSignDistRefusesAManifestThatWouldNotParse(t *testing.T) {
	dir := fakeDist(t, testCommit)
	d, err := Discover(dir)
	require.NoError(t, err)
	key, _, _ := newKey(t)
	_, err = SignDist(d, key, 0, time.Now())
	require.Error(t, err)
	assert.NoFileExists(t, filepath.Join(dir, ManifestName))
}
