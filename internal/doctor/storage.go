package doctor

import (
	"context"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/objstore"
)

// checkStorage probes the episode bucket the receiver writes to (serve.storage,
// backend s3): it answers, an object can be written and deleted under the prefix, and
// a second If-None-Match: * write of one key is refused (SPEC §4.3, "the object store
// when configured").
func checkStorage(ctx context.Context, sc config.Storage) Check {
	if sc.Backend != config.BackendS3 {
		return skipped("episodes are kept in the data folder (serve.storage.backend = \"" + sc.Backend + "\"): no object store to check")
	}
	st, err := objstore.New(sc, objstore.Options{Logger: zerolog.Nop()})
	if err != nil {
		return failed(err.Error(), "fix [serve.storage] in lab-host.toml (credentials_file holds the keys: [default] aws_access_key_id, aws_secret_access_key)",
			storageDetails(sc))
	}
	return judgeStorage(sc, st.Check(ctx))
}

// judgeStorage turns what the probe found into the check.
func judgeStorage(sc config.Storage, c objstore.Check) Check {
	details := storageDetails(sc)
	details["server"], details["reachable"], details["writable"], details["conditional_writes"] = c.Server, c.Reachable, c.Writable, c.ConditionalWrites
	if c.Err != nil {
		details["error"] = c.Err.Error()
	}
	where := fmt.Sprintf("bucket %s at %s", sc.Bucket, sc.Where())
	down := "meanwhile the receiver answers every upload 503 and the lab hosts keep their files (nothing is lost)"
	switch {
	case !c.Reachable:
		return failed(fmt.Sprintf("the %s does not answer: %s", where, objstore.Reason(c.Err)),
			"start the object store, or fix serve.storage.endpoint (and ca_file for TLS) and the network between this machine and it; "+down, details)
	case !c.Writable:
		return failed(fmt.Sprintf("the %s answers but refused to store and delete a probe object under %q: %s", where, sc.ObjectPrefix()+".cis490-probe/", objstore.Reason(c.Err)),
			"check that the bucket exists, that the keys in "+sc.CredentialsFile+" (profile "+sc.Profile+") are the store's and may put and delete objects under serve.storage.prefix, and serve.storage.region; "+down, details)
	case c.Err != nil:
		return failed(fmt.Sprintf("the %s is writable but failed the conditional-write probe: %s", where, objstore.Reason(c.Err)),
			"the store answers errors: its own log says why; "+down, details)
	case !c.ConditionalWrites:
		return warned(fmt.Sprintf("the %s is reachable and writable, but %s does not refuse a second If-None-Match: * write: the receiver orders identical uploads with a lock of its own",
			where, serverName(c.Server)),
			"safe while one receiver writes under serve.storage.prefix: never point a second receiver at the same prefix; a store with conditional writes (versitygw, SeaweedFS, MinIO, AWS S3) removes the need", details)
	}
	summary := "the " + where + " is reachable and writable, with conditional writes"
	if c.Server != "" {
		summary += " (server: " + c.Server + ")"
	}
	return ok(summary, details)
}

func storageDetails(sc config.Storage) map[string]any {
	return map[string]any{"endpoint": sc.Where(), "bucket": sc.Bucket, "prefix": sc.ObjectPrefix(), "region": sc.Region}
}

func serverName(server string) string {
	if server == "" {
		return "the store"
	}
	return "the store (" + server + ")"
}
