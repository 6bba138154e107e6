package fleethealth

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/objstore/objstoretest"
	"github.com/cis490/cis490/internal/protocol"
)

// storagePi is pi with an object store whose state the receiver reports as sh.
func storagePi(dir string, sh *protocol.StorageHealth) *ReceiverFacts {
	rf := pi(dir, 10<<30)
	rf.Health.Storage = sh
	return rf
}

// What the receiver's /healthz says of its store, and what fleet health's own
// request found, make storage-down: dated by the receiver's first failure.
func TestStorageDownJudgement(t *testing.T) {
	t.Parallel()
	failingSince := t0.Add(-mins(12))
	lastOK := t0.Add(-mins(13))
	failing := &protocol.StorageHealth{Backend: "s3", OK: false, LastOK: lastOK, FailingSince: failingSince, ConditionalWrites: true}
	healthy := &protocol.StorageHealth{Backend: "s3", OK: true, LastOK: t0.Add(-time.Minute), ConditionalWrites: true}
	refused := os.ErrDeadlineExceeded
	for _, tc := range []struct {
		name      string
		rf        func(dir string) *ReceiverFacts
		since     time.Time
		summary   []string
		noFinding bool
	}{
		{name: "the data folder", noFinding: true, rf: func(dir string) *ReceiverFacts { return pi(dir, 10<<30) }},
		{name: "the store answers", noFinding: true, rf: func(dir string) *ReceiverFacts {
			rf := storagePi(dir, healthy)
			rf.StorageProbed = true
			return rf
		}},
		{name: "the receiver's requests fail", since: failingSince, rf: func(dir string) *ReceiverFacts { return storagePi(dir, failing) },
			summary: []string{"pi's object store is unreachable: the receiver's requests to it have failed since 2026-11-28 17:48Z (last success: 2026-11-28 17:47Z)",
				"uploads are answered 503 and the lab hosts keep their files until it is back", "`cis490 doctor` on pi runs the storage check"}},
		{name: "the receiver's requests fail, ours succeeds", since: failingSince, rf: func(dir string) *ReceiverFacts {
			rf := storagePi(dir, failing)
			rf.StorageProbed = true
			return rf
		}, summary: []string{"fleet health's own request just now succeeded, so it may be back"}},
		{name: "ours fails while the receiver has not asked", since: t0, rf: func(dir string) *ReceiverFacts {
			rf := storagePi(dir, healthy)
			rf.Storage = config.Storage{Backend: "s3", Bucket: "episodes", Endpoint: "http://127.0.0.1:8333"}
			rf.StorageProbed, rf.StorageErr = true, refused
			return rf
		}, summary: []string{"fleet health's own request to bucket episodes at http://127.0.0.1:8333 failed: " + refused.Error()}},
		{name: "a draining receiver says nothing of its store", noFinding: true, rf: func(dir string) *ReceiverFacts {
			rf := storagePi(dir, failing)
			rf.Health.Status = protocol.HealthDraining
			return rf
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := storageDown(tc.rf(t.TempDir()), t0)
			if tc.noFinding {
				assert.Nil(t, f)
				return
			}
			require.NotNil(t, f)
			assert.Equal(t, StorageDown, f.Symptom)
			assert.Equal(t, tc.since, f.Since)
			for _, s := range tc.summary {
				assert.Contains(t, f.Summary, s)
			}
		})
	}
	assert.Equal(t, Critical, Severity(StorageDown))
}

// Through whole checks: firing once, with its evidence, then resolved when the
// receiver's next request succeeds.
func TestStorageDownFiresAndResolves(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	healthy(f, t0.Add(time.Hour))
	failing := &protocol.StorageHealth{Backend: "s3", LastOK: t0.Add(-mins(10)), FailingSince: t0.Add(-mins(9)), ConditionalWrites: true}
	f.checkWith(t0, storagePi(f.dir, failing))
	f.checkWith(t0.Add(mins(5)), storagePi(f.dir, failing))
	lines := f.lines()
	require.Equal(t, []string{"firing pi/storage-down@18:00"}, statuses(lines), "one firing line for two checks")
	assert.Equal(t, Critical, lines[0].Severity)
	assert.Equal(t, t0.Add(-mins(9)), lines[0].Since, "the threshold time is the receiver's first failure")
	ev := evidence(t, lines[0])
	assert.Equal(t, "2026-11-28T17:51:00Z", ev["failing_since"])
	assert.Equal(t, "2026-11-28T17:50:00Z", ev["last_ok"])
	assert.Equal(t, false, ev["receiver_ok"])
	assert.Equal(t, "not made", ev["probe"])

	back := &protocol.StorageHealth{Backend: "s3", OK: true, LastOK: t0.Add(mins(7)), ConditionalWrites: true}
	f.checkWith(t0.Add(mins(10)), storagePi(f.dir, back))
	assert.Equal(t, []string{"firing pi/storage-down@18:00", "resolved pi/storage-down@18:10"}, statuses(f.lines()))
}

// Fleet health asks a real store itself: a HEAD, nothing written; a stopped store is
// storage-down though the receiver has not noticed yet, with the error as evidence.
func TestStorageProbeAgainstARealStore(t *testing.T) {
	t.Parallel()
	objstoretest.Each(t, func(t *testing.T, tg *objstoretest.Target) {
		cfg := piConfig(t.TempDir(), piHealthz(t, protocol.Health{Status: protocol.HealthOK,
			Storage: &protocol.StorageHealth{Backend: "s3", OK: true, ConditionalWrites: true}}), 0)
		cfg.Serve.Storage = tg.Storage(t, "pi-1/")
		fh := config.Default().FleetHealth

		rf := GatherReceiverFacts(t.Context(), cfg)
		assert.True(t, rf.StorageProbed)
		require.NoError(t, rf.StorageErr)
		assert.Nil(t, findingOf(piFindings(rf, time.Time{}, t0, fh), StorageDown))
		assert.Empty(t, tg.Keys(t, ""), "the probe writes nothing")

		if tg.Stop == nil {
			return
		}
		tg.Stop(t)
		rf = GatherReceiverFacts(t.Context(), cfg)
		require.True(t, rf.StorageProbed)
		require.Error(t, rf.StorageErr)
		found := findingOf(piFindings(rf, time.Time{}, t0, fh), StorageDown)
		require.NotNil(t, found)
		assert.Equal(t, t0, found.Since, "first seen now")
		assert.Contains(t, found.Summary, "fleet health's own request to bucket "+tg.Bucket+" at "+tg.Endpoint+" failed: dial tcp")
		assert.Contains(t, found.Summary, "connection refused")
		assert.Equal(t, "failed", found.Evidence["probe"])
		assert.Contains(t, found.Evidence["error"], "connection refused")
		assert.NotContains(t, found.Summary, tg.Secret)

		tg.Start(t)
		rf = GatherReceiverFacts(t.Context(), cfg)
		assert.NoError(t, rf.StorageErr)
	})
}

// Keys fleet health cannot read leave the receiver's word alone to judge by.
func TestStorageProbeWithoutCredentials(t *testing.T) {
	t.Parallel()
	sc := config.Default().Serve.Storage
	sc.Backend, sc.Endpoint, sc.Bucket = config.BackendS3, "http://127.0.0.1:1", "episodes"
	sc.CredentialsFile = filepath.Join(t.TempDir(), "missing")
	probed, err := probeStorage(t.Context(), sc)
	assert.False(t, probed)
	require.Error(t, err)
	f := storageDown(&ReceiverFacts{Host: "pi", Storage: sc, StorageErr: err, Health: &protocol.Health{Status: protocol.HealthOK,
		Storage: &protocol.StorageHealth{Backend: "s3", FailingSince: t0.Add(-time.Minute)}}}, t0)
	require.NotNil(t, f)
	assert.Contains(t, f.Evidence["probe"], "not made: ")

	probed, err = probeStorage(t.Context(), config.Default().Serve.Storage)
	assert.False(t, probed)
	assert.NoError(t, err, "backend fs: nothing to ask")
}
