package fleethealth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/humanize"
	"github.com/cis490/cis490/internal/localprobe"
	"github.com/cis490/cis490/internal/protocol"
)

// The Pi's own symptoms, on its row (its host name): SPEC §5.1.
const (
	DiskLow      = "disk-low"
	GateStale    = "gate-stale"
	ReceiverDown = "receiver-down"
	StorageDown  = "storage-down"
)

// ReceiverFacts is what fleet-health check learns of the receiver it runs beside.
type ReceiverFacts struct {
	Host         string // the Pi's fleet name (cfg.Host)
	DataDir      string
	FreeBytes    uint64 // free space of data_dir for unprivileged writers (statfs Bavail*Bsize)
	MinFreeBytes uint64
	FreeErr      error
	Health       *protocol.Health // GET /healthz of the local receiver
	HealthErr    error
	// Storage is serve.storage; with backend s3, StorageProbed says whether fleet
	// health asked the bucket itself (storagedown.go), and StorageErr what that found.
	Storage       config.Storage
	StorageProbed bool
	StorageErr    error
}

// StatePath is fleet-health.json in dataDir. Every check that is not a dry run saves
// it, so its age is how long ago fleet health last ran: doctor on the Pi reads it
// where systemd cannot say.
func StatePath(dataDir string) string { return statePath(dataDir) }

// GatherReceiverFacts reads the data folder's free space and asks the local receiver
// for /healthz through its configured listener (localprobe), within localprobe.Timeout.
func GatherReceiverFacts(ctx context.Context, cfg config.Config) *ReceiverFacts {
	rf := &ReceiverFacts{Host: cfg.Host, DataDir: cfg.Serve.DataDir, MinFreeBytes: uint64(max(cfg.Serve.MinFreeBytes, 0))}
	var st unix.Statfs_t
	if err := unix.Statfs(rf.DataDir, &st); err != nil {
		rf.FreeErr = fmt.Errorf("statfs %s: %w", rf.DataDir, err)
	} else {
		rf.FreeBytes = st.Bavail * uint64(st.Bsize)
	}
	rf.Health, rf.HealthErr = localprobe.Health(ctx, cfg.Serve)
	rf.Storage = cfg.Serve.Storage
	rf.StorageProbed, rf.StorageErr = probeStorage(ctx, cfg.Serve.Storage)
	return rf
}

// piFindings lists the Pi's own symptoms as of now. last507 is the latest request the
// receiver answered 507 (zero: none in the window).
func piFindings(rf *ReceiverFacts, last507, now time.Time, cfg config.FleetHealth) []Finding {
	if rf == nil {
		return nil
	}
	var out []Finding
	for _, f := range []*Finding{diskLow(rf, last507, now, cfg), gateStale(rf, now, cfg), receiverDown(rf, now), storageDown(rf, now)} {
		if f != nil {
			out = append(out, *f)
		}
	}
	return out
}

// diskLow: free space of data_dir under twice min_free_bytes (uploads are refused
// 507 below once), or a 507 within fatal_window. Free space is only known as of now,
// so that is its threshold time; a 507 dates itself.
func diskLow(rf *ReceiverFacts, last507, now time.Time, cfg config.FleetHealth) *Finding {
	low := rf.FreeErr == nil && rf.FreeBytes < 2*rf.MinFreeBytes
	refused := !last507.IsZero() && !last507.After(now) && now.Sub(last507) <= cfg.FatalWindow
	if !low && !refused {
		return nil
	}
	ev := map[string]any{
		"data_dir": rf.DataDir, "free_bytes": rf.FreeBytes, "min_free_bytes": rf.MinFreeBytes,
		"low_below_bytes": 2 * rf.MinFreeBytes, "last_507": nil,
	}
	if rf.FreeErr != nil {
		ev["free_bytes"], ev["free_error"] = nil, rf.FreeErr.Error()
	}
	since := now
	var what []string
	switch {
	case low && rf.FreeBytes < rf.MinFreeBytes:
		what = append(what, fmt.Sprintf("%s free in %s, under serve.min_free_bytes (%s): every upload is refused 507",
			humanize.Bytes(rf.FreeBytes), rf.DataDir, humanize.Bytes(rf.MinFreeBytes)))
	case low:
		what = append(what, fmt.Sprintf("%s free in %s, under twice serve.min_free_bytes (%s): uploads are refused 507 below %s",
			humanize.Bytes(rf.FreeBytes), rf.DataDir, humanize.Bytes(rf.MinFreeBytes), humanize.Bytes(rf.MinFreeBytes)))
	}
	if refused {
		since = last507
		ev["last_507"] = last507
		what = append(what, "an upload was refused 507 (disk full or below serve.min_free_bytes) at "+stamp(last507))
	}
	return &Finding{
		Symptom: DiskLow,
		Since:   since,
		Summary: fmt.Sprintf("%s's disk is low: %s; free space in %s (old episodes, index files) or lower serve.min_free_bytes",
			rf.Host, strings.Join(what, "; "), rf.DataDir),
		Evidence: ev,
	}
}

// gateStale: a gate source has failed to refresh for gate_stale_after (it keeps its
// last good list meanwhile), or never loaded. Only judged from a /healthz answer of a
// receiver that is not shutting down; without one, receiver-down speaks.
func gateStale(rf *ReceiverFacts, now time.Time, cfg config.FleetHealth) *Finding {
	if rf.Health == nil || rf.Health.Status != protocol.HealthOK {
		return nil
	}
	var stale []string
	var sources []map[string]any
	var since time.Time
	loaded := 0
	for _, src := range rf.Health.Gate {
		if src.Loaded {
			loaded++
		}
		var at time.Time
		switch {
		case !src.Loaded:
			at = src.FailingSince
			if at.IsZero() {
				at = now // not even tried yet: all we know is that it has no list now
			}
			stale = append(stale, src.Name+" never loaded")
		case !src.FailingSince.IsZero() && now.Sub(src.FailingSince) >= cfg.GateStaleAfter:
			at = src.FailingSince.Add(cfg.GateStaleAfter)
			stale = append(stale, fmt.Sprintf("%s has failed to refresh since %s (last good list %s)", src.Name, stamp(src.FailingSince), stamp(src.LastOK)))
		default:
			continue
		}
		if since.IsZero() || at.Before(since) {
			since = at
		}
		sources = append(sources, map[string]any{
			"name": src.Name, "loaded": src.Loaded, "last_ok": nilIfZero(src.LastOK), "failing_since": nilIfZero(src.FailingSince),
		})
	}
	if len(stale) == 0 {
		return nil
	}
	effect := "it keeps its last good list, so newly allowed commits are refused 426"
	if loaded == 0 {
		effect = "no source has a list, so the gate lets every commit through"
	}
	return &Finding{
		Symptom: GateStale,
		Since:   since,
		Summary: fmt.Sprintf("%s's version gate is stale: %s; %s; check the gate source (serve.gate, and why it fails: `journalctl -u cis490-receiver`)",
			rf.Host, strings.Join(stale, "; "), effect),
		Evidence: map[string]any{"sources": sources, "gate_stale_after": human(cfg.GateStaleAfter)},
	}
}

// receiverDown: the local receiver does not answer /healthz on its listener. Only its
// absence is seen, as of now. A receiver that proved itself with its certificate and
// then wanted a client certificate is up: it answered, only not with its health.
func receiverDown(rf *ReceiverFacts, now time.Time) *Finding {
	if rf.HealthErr == nil || errors.Is(rf.HealthErr, localprobe.ErrClientCertRequired) {
		return nil
	}
	why := rf.HealthErr.Error()
	summary := fmt.Sprintf("the receiver on %s does not answer /healthz: %s", rf.Host, why)
	if !strings.Contains(why, "systemctl") {
		summary += "; `systemctl status cis490-receiver`"
	}
	return &Finding{Symptom: ReceiverDown, Since: now, Summary: summary, Evidence: map[string]any{"error": why}}
}

func nilIfZero(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}
