package tokens

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/testutil"
)

// logsAfterLookup does a Lookup, which is what triggers a reload, then reports whether
// the logs mention what.
func logsAfterLookup(s *Store, logs *testutil.SyncBuffer, what string) func() bool {
	return func() bool {
		s.Lookup("c490_probe")
		return strings.Contains(logs.String(), what)
	}
}

func newStore(t *testing.T, interval time.Duration) (*Store, string, string, *testutil.SyncBuffer) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens.toml")
	tok, err := Append(path, Identity{Host: "lab-01"}, now)
	require.NoError(t, err)
	logs := &testutil.SyncBuffer{}
	s, err := openStore(path, zerolog.New(logs), interval, time.Now)
	require.NoError(t, err)
	return s, path, tok, logs
}

func TestStorePicksUpAppend(t *testing.T) {
	s, path, first, _ := newStore(t, time.Millisecond)
	id, ok := s.Lookup(first)
	require.True(t, ok)
	assert.Equal(t, "lab-01", id.Host)

	// Lookups race the reload.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					s.Lookup(first)
				}
			}
		})
	}
	second, err := Append(path, Identity{Admin: "alice"}, now)
	require.NoError(t, err)
	assert.Eventually(t, func() bool {
		id, ok := s.Lookup(second)
		return ok && id == Identity{Admin: "alice"}
	}, 5*time.Second, time.Millisecond)
	close(stop)
	wg.Wait()
	_, ok = s.Lookup(first)
	assert.True(t, ok)
}

func TestStoreChecksAtMostOncePerInterval(t *testing.T) {
	s, path, _, _ := newStore(t, time.Hour)
	tok, err := Append(path, Identity{Host: "lab-02"}, now)
	require.NoError(t, err)
	_, ok := s.Lookup(tok)
	assert.False(t, ok, "the file must not be checked before the interval is over")
	s.due.Store(0)
	_, ok = s.Lookup(tok)
	assert.True(t, ok)
}

func TestStoreKeepsOldSetWhenFileBreaks(t *testing.T) {
	s, path, tok, logs := newStore(t, time.Millisecond)
	require.NoError(t, os.WriteFile(path, []byte("[[token]]\nsha256 = \"c490_leaked\"\nhost = \"lab-01\"\n"), 0o600))
	require.Eventually(t, logsAfterLookup(s, logs, "invalid"), 5*time.Second, time.Millisecond)
	_, ok := s.Lookup(tok)
	assert.True(t, ok, "a broken file keeps the previous set")
	assert.NotContains(t, logs.String(), tok)
	assert.NotContains(t, logs.String(), "c490_leaked")

	require.NoError(t, os.Remove(path))
	require.Eventually(t, logsAfterLookup(s, logs, "unreadable"), 5*time.Second, time.Millisecond)
	_, ok = s.Lookup(tok)
	assert.True(t, ok, "a removed file keeps the previous set")

	tok2, err := Append(path, Identity{Host: "lab-02"}, now)
	require.NoError(t, err)
	assert.Eventually(t, func() bool { _, ok := s.Lookup(tok2); return ok }, 5*time.Second, time.Millisecond)
	_, ok = s.Lookup(tok)
	assert.False(t, ok, "the file written anew no longer holds the first token")
}

func TestOpenStoreNeedsAGoodFile(t *testing.T) {
	dir := t.TempDir()
	_, err := OpenStore(filepath.Join(dir, "missing.toml"), zerolog.Nop())
	assert.ErrorContains(t, err, "missing.toml")
	bad := filepath.Join(dir, "bad.toml")
	require.NoError(t, os.WriteFile(bad, []byte("[[token]]\nhost = \"lab-01\"\n"), 0o600))
	_, err = OpenStore(bad, zerolog.Nop())
	assert.ErrorContains(t, err, "entry 1")
}

// A revocation takes effect on a running receiver: the reload drops what the file no
// longer holds.
func TestStorePicksUpRevoke(t *testing.T) {
	s, path, first, _ := newStore(t, time.Millisecond)
	second, err := Append(path, Identity{Host: "lab-02"}, now)
	require.NoError(t, err)
	require.Eventually(t, func() bool { _, ok := s.Lookup(second); return ok }, 5*time.Second, time.Millisecond)

	_, err = Revoke(path, Selector{Host: "lab-01"})
	require.NoError(t, err)
	assert.Eventually(t, func() bool { _, ok := s.Lookup(first); return !ok }, 5*time.Second, time.Millisecond)
	_, ok := s.Lookup(second)
	assert.True(t, ok)
	assert.Equal(t, 1, s.Len())
}

// A rotated token stops working when its grace ends by the store's clock, with no
// change to the file at that moment.
func TestStoreRefusesExpiredTokens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.toml")
	old, err := Append(path, Identity{Host: "lab-07"}, now)
	require.NoError(t, err)
	rot, err := Rotate(path, "lab-07", now, time.Hour)
	require.NoError(t, err)

	var mu sync.Mutex
	clock := now
	s, err := openStore(path, zerolog.Nop(), time.Hour, func() time.Time { mu.Lock(); defer mu.Unlock(); return clock })
	require.NoError(t, err)
	set := func(t time.Time) { mu.Lock(); clock = t; mu.Unlock() }
	for _, tc := range []struct {
		at      time.Time
		old, nu bool
	}{
		{now, true, true},
		{now.Add(time.Hour - time.Second), true, true},
		{now.Add(time.Hour), false, true},
		{now.Add(30 * 24 * time.Hour), false, true},
	} {
		set(tc.at)
		_, ok := s.Lookup(old)
		assert.Equal(t, tc.old, ok, "old token at %s", tc.at)
		_, ok = s.Lookup(rot.Token)
		assert.Equal(t, tc.nu, ok, "new token at %s", tc.at)
	}
}
