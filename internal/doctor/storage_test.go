package doctor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/objstore"
	"github.com/cis490/cis490/internal/objstore/objstoretest"
	"github.com/cis490/cis490/internal/store"
)

func TestStorageCheckSkipsTheDataFolder(t *testing.T) {
	t.Parallel()
	c := checkStorage(context.Background(), config.Default().Serve.Storage)
	assert.Equal(t, Skip, c.Status)
	assert.Contains(t, c.Summary, `serve.storage.backend = "fs"`)
}

// Against a real store: ok, then failed with a hint once it is stopped, and ok again.
func TestStorageCheckAgainstARealStore(t *testing.T) {
	t.Parallel()
	objstoretest.Each(t, func(t *testing.T, tg *objstoretest.Target) {
		sc := tg.Storage(t, "pi-1/")
		c := checkStorage(t.Context(), sc)
		require.Equal(t, OK, c.Status, "%s / %s", c.Summary, c.Hint)
		assert.Contains(t, c.Summary, "the bucket "+tg.Bucket+" at "+tg.Endpoint+" is reachable and writable, with conditional writes")
		assert.Equal(t, true, c.Details["conditional_writes"])
		assert.Equal(t, "pi-1/", c.Details["prefix"])
		assert.Empty(t, tg.Keys(t, "pi-1/"), "the probe objects are deleted")
		assert.Empty(t, tg.Multiparts(t, "pi-1/"), "and the probe's multipart upload aborted")
		assert.NotContains(t, c.Summary+c.Hint, tg.Secret)

		if tg.Stop == nil {
			return // a server the test did not start
		}
		tg.Stop(t)
		c = checkStorage(t.Context(), sc)
		assert.Equal(t, Fail, c.Status)
		assert.Contains(t, c.Summary, "the bucket "+tg.Bucket+" at "+tg.Endpoint+" does not answer")
		assert.Contains(t, c.Summary, "connection refused")
		assert.Contains(t, c.Hint, "start the object store, or fix serve.storage.endpoint")
		assert.Contains(t, c.Hint, "the receiver answers every upload 503 and the lab hosts keep their files")
		assert.Equal(t, false, c.Details["reachable"])

		tg.Start(t)
		assert.Equal(t, OK, checkStorage(t.Context(), sc).Status)
	})
}

func TestStorageCheckRefusedKeysAndAMissingBucket(t *testing.T) {
	t.Parallel()
	objstoretest.Each(t, func(t *testing.T, tg *objstoretest.Target) {
		wrong := tg.Storage(t, "pi-1/")
		wrong.CredentialsFile = filepath.Join(t.TempDir(), "creds")
		require.NoError(t, os.WriteFile(wrong.CredentialsFile, []byte("[default]\naws_access_key_id = "+tg.Access+"\naws_secret_access_key = not-the-secret\n"), 0o600))
		c := checkStorage(t.Context(), wrong)
		assert.Equal(t, Fail, c.Status)
		assert.Contains(t, c.Summary, "answers but refused to store and delete a probe object")
		assert.Contains(t, c.Hint, "the keys in "+wrong.CredentialsFile+" (profile default)")
		assert.NotContains(t, c.Summary+c.Hint, "not-the-secret")

		missing := tg.Storage(t, "pi-1/")
		missing.Bucket = "no-such-bucket"
		c = checkStorage(t.Context(), missing)
		assert.Equal(t, Fail, c.Status)
		assert.Contains(t, c.Hint, "check that the bucket exists")

		gone := tg.Storage(t, "pi-1/")
		gone.CredentialsFile = filepath.Join(t.TempDir(), "nope")
		c = checkStorage(t.Context(), gone)
		assert.Equal(t, Fail, c.Status)
		assert.Contains(t, c.Hint, "fix [serve.storage] in lab-host.toml")
	})
}

// A store without conditional writes works with the receiver's own lock: a warning.
// No server at hand lacks them, so this judges what such a probe reports.
func TestStorageCheckWithoutConditionalWrites(t *testing.T) {
	t.Parallel()
	sc := config.Default().Serve.Storage
	sc.Backend, sc.Endpoint, sc.Bucket = config.BackendS3, "http://127.0.0.1:8333", "episodes"
	c := judgeStorage(sc, objstore.Check{Server: "OldStore/1.0", Reachable: true, Writable: true})
	assert.Equal(t, Warn, c.Status)
	assert.Contains(t, c.Summary, "the store (OldStore/1.0) does not refuse a second If-None-Match: * write")
	assert.Contains(t, c.Hint, "never point a second receiver at the same prefix")

	c = judgeStorage(sc, objstore.Check{Reachable: true, Writable: true, Err: errors.Join(store.ErrUnavailable, errors.New("complete: 500"))})
	assert.Equal(t, Fail, c.Status)
	assert.Contains(t, c.Summary, "failed the conditional-write probe")
}
