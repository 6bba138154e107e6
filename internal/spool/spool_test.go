package spool

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestInProgress(t *testing.T) {
	for name, want := range map[string]bool{
		"ep.tar": false, "ep.tar.gz": false, "ep.part.tar": false,
		".ep.tar": true, "ep.tar.part": true, ".": true, ".doctor-123": true,
	} {
		assert.Equal(t, want, InProgress(name), name)
	}
}

func TestQueueIsOldestFirstAndSkipsInProgress(t *testing.T) {
	s := New(t.TempDir())
	require.NoError(t, s.Prepare())
	now := time.Now()
	for name, age := range map[string]time.Duration{"b.tar": time.Hour, "a.tar": time.Minute, "c.tar": 2 * time.Hour, "d.tar.part": 3 * time.Hour, ".e.tar": 4 * time.Hour} {
		p := filepath.Join(s.Path(Outbox), name)
		require.NoError(t, os.WriteFile(p, []byte(name), 0o600))
		require.NoError(t, os.Chtimes(p, now.Add(-age), now.Add(-age)))
	}
	require.NoError(t, os.Mkdir(filepath.Join(s.Path(Outbox), "subdir"), 0o700))
	q, err := s.Queue()
	require.NoError(t, err)
	var names []string
	for _, f := range q {
		names = append(names, f.Name)
	}
	assert.Equal(t, []string{"c.tar", "b.tar", "a.tar"}, names)
}

func TestRejectKeepsTheTarballWithItsReason(t *testing.T) {
	s := New(t.TempDir())
	require.NoError(t, s.Prepare())
	p := filepath.Join(s.Path(Outbox), "bad.tar")
	require.NoError(t, os.WriteFile(p, []byte("bad"), 0o600))
	q, err := s.Queue()
	require.NoError(t, err)
	require.Len(t, q, 1)
	at := time.Date(2026, 11, 28, 18, 0, 0, 0, time.UTC)
	require.NoError(t, s.Reject(q[0], Reason{RejectedAt: at, Status: 422, Reason: "digest mismatch"}))
	b, err := os.ReadFile(filepath.Join(s.Path(Rejected), "bad.tar"))
	require.NoError(t, err)
	assert.Equal(t, "bad", string(b))
	raw, err := os.ReadFile(filepath.Join(s.Path(Rejected), "bad.tar"+ReasonSuffix))
	require.NoError(t, err)
	var why Reason
	require.NoError(t, json.Unmarshal(raw, &why))
	assert.Equal(t, Reason{RejectedAt: at, Status: 422, Reason: "digest mismatch"}, why)
	_, err = os.Stat(p)
	assert.True(t, os.IsNotExist(err), "gone from the outbox")
}

func TestPrepareReportsAnUnusableSpool(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	err := New(filepath.Join(file, "spool")).Prepare()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "ship.spool_dir")
}

func TestRejectNeverReplacesAnEarlierRejection(t *testing.T) {
	s := New(t.TempDir())
	require.NoError(t, s.Prepare())
	for i, content := range []string{"first", "second", "third"} {
		p := filepath.Join(s.Path(Outbox), "run.tar")
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		q, err := s.Queue()
		require.NoError(t, err)
		require.NoError(t, s.Reject(q[0], Reason{RejectedAt: time.Now(), Reason: content}), i)
	}
	for name, content := range map[string]string{"run.tar": "first", "run.tar.1": "second", "run.tar.2": "third"} {
		b, err := os.ReadFile(filepath.Join(s.Path(Rejected), name))
		require.NoError(t, err)
		assert.Equal(t, content, string(b))
		reason, err := os.ReadFile(filepath.Join(s.Path(Rejected), name+ReasonSuffix))
		require.NoError(t, err)
		assert.Contains(t, string(reason), content)
	}
}

func TestMarkSentStampsTheShippingTime(t *testing.T) {
	s := New(t.TempDir())
	require.NoError(t, s.Prepare())
	p := filepath.Join(s.Path(Outbox), "old.tar")
	require.NoError(t, os.WriteFile(p, []byte("x"), 0o600))
	long := time.Now().Add(-30 * 24 * time.Hour)
	require.NoError(t, os.Chtimes(p, long, long))
	q, err := s.Queue()
	require.NoError(t, err)
	now := time.Now().Truncate(time.Second)
	require.NoError(t, s.MarkSent(q[0], now))
	st, err := os.Stat(filepath.Join(s.Path(Sent), "old.tar"))
	require.NoError(t, err)
	assert.True(t, st.ModTime().Equal(now), "keep_sent counts from shipping, not from when it was written")
}
