package fleethealth

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/objstore"
	"github.com/cis490/cis490/internal/protocol"
)

// storageProbeTimeout bounds fleet health's own request to the bucket.
const storageProbeTimeout = 5 * time.Second

// storageProbeSHA is the episode fleet health asks the bucket for: none has it, so a
// store that answers says 404, which is all the probe wants to hear.
const storageProbeSHA = "0000000000000000000000000000000000000000000000000000000000000000"

// probeStorage asks the bucket of sc (backend s3) for one object's metadata: a
// read-only HEAD, so that a store down is seen even while no upload asks it. probed
// is false when no request could be made (backend fs, or the credentials unreadable:
// err says why); the receiver's own word (/healthz) is all there is then.
func probeStorage(ctx context.Context, sc config.Storage) (probed bool, err error) {
	if sc.Backend != config.BackendS3 {
		return false, nil
	}
	st, err := objstore.New(sc, objstore.Options{Logger: zerolog.Nop(), StallTimeout: storageProbeTimeout})
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, storageProbeTimeout)
	defer cancel()
	_, _, err = st.Stat(ctx, "cis490-probe", storageProbeSHA)
	return true, err
}

// storageDown: the object store episodes go to is unreachable, as the receiver's
// requests to it found (/healthz storage, failing since its first failure since the
// last success: the threshold time) or as fleet health's own request finds now. It
// clears once both succeed: the receiver's state changes at its next request to the
// store (an upload, or its hourly sweep).
func storageDown(rf *ReceiverFacts, now time.Time) *Finding {
	var sh *protocol.StorageHealth
	if rf.Health != nil && rf.Health.Status == protocol.HealthOK {
		sh = rf.Health.Storage
	}
	receiverFailing := sh != nil && !sh.OK
	probeFailed := rf.StorageProbed && rf.StorageErr != nil
	if !receiverFailing && !probeFailed {
		return nil
	}
	ev := map[string]any{"failing_since": nil, "last_ok": nil, "receiver_ok": nil, "error": nil, "probe": "ok"}
	if rf.Storage.Bucket != "" {
		ev["bucket"], ev["endpoint"] = rf.Storage.Bucket, rf.Storage.Where()
	}
	since := now
	var what []string
	if probeFailed {
		ev["error"], ev["probe"] = rf.StorageErr.Error(), "failed"
		what = append(what, fmt.Sprintf("fleet health's own request to bucket %s at %s failed: %s",
			rf.Storage.Bucket, rf.Storage.Where(), objstore.Reason(rf.StorageErr)))
	} else if !rf.StorageProbed {
		ev["probe"] = "not made"
		if rf.StorageErr != nil {
			ev["probe"] = "not made: " + rf.StorageErr.Error()
		}
	}
	if sh != nil {
		ev["receiver_ok"], ev["failing_since"], ev["last_ok"] = sh.OK, nilIfZero(sh.FailingSince), nilIfZero(sh.LastOK)
	}
	if receiverFailing {
		if !sh.FailingSince.IsZero() && sh.FailingSince.Before(now) {
			since = sh.FailingSince
		}
		last := "none since it started"
		if !sh.LastOK.IsZero() {
			last = stamp(sh.LastOK)
		}
		part := fmt.Sprintf("the receiver's requests to it have failed since %s (last success: %s)", stamp(since), last)
		if rf.StorageProbed && rf.StorageErr == nil {
			part += "; fleet health's own request just now succeeded, so it may be back: the receiver's next request to it will tell"
		}
		what = append(what, part)
	}
	return &Finding{
		Symptom: StorageDown,
		Since:   since,
		Summary: fmt.Sprintf("%s's object store is unreachable: %s; uploads are answered 503 and the lab hosts keep their files until it is back: "+
			"check the store and serve.storage (`cis490 doctor` on %s runs the storage check; `journalctl -u cis490-receiver` has the receiver's errors)",
			rf.Host, strings.Join(what, "; "), rf.Host),
		Evidence: ev,
	}
}
