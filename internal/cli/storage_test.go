package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/migrate"
	"github.com/cis490/cis490/internal/objstore/objstoretest"
	"github.com/cis490/cis490/internal/store"
)

func TestStorageMigrateRefusesWithoutABucket(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "lab-host.toml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf("[serve]\ndata_dir = %q\n", filepath.Join(dir, "data"))), 0o600))

	code, out, errs := runCLI(t, "", "storage", "migrate", "--to", "s3", "--config", cfg)
	assert.Equal(t, ExitUsage, code)
	assert.Empty(t, out)
	assert.Contains(t, errs, `serve.storage.backend is "fs" in `+cfg+", so there is no bucket to migrate to")
	assert.Contains(t, errs, `set backend = "s3", endpoint, bucket and credentials_file in [serve.storage]`)

	code, _, errs = runCLI(t, "", "storage", "migrate", "--to", "gcs", "--config", cfg)
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, errs, `--to "gcs": the only destination is s3`)

	code, _, errs = runCLI(t, "", "storage", "migrate", "--config", cfg)
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, errs, `required flag(s) "to" not set`)
}

// The command over a real versitygw and a real data folder: the summary, its JSON and
// the exit codes.
func TestStorageMigrateCommand(t *testing.T) {
	t.Parallel()
	tg := objstoretest.Versitygw(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	st, err := store.Open(data, store.Options{Logger: zerolog.Nop()})
	require.NoError(t, err)
	var shas []string
	for i := range 3 {
		body := bytes.Repeat([]byte{byte('a' + i)}, 1000*(i+1))
		s := sha256.Sum256(body)
		sha := hex.EncodeToString(s[:])
		_, err := st.PutEpisode(context.Background(), "lab-01", sha, bytes.NewReader(body), int64(len(body)), store.EpisodeMeta{Episode: fmt.Sprintf("ep-%d", i), Size: int64(len(body))})
		require.NoError(t, err)
		shas = append(shas, sha)
	}
	cfg := filepath.Join(dir, "lab-host.toml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`[serve]
data_dir = %q
[serve.storage]
backend = "s3"
endpoint = %q
bucket = %q
prefix = "pi-1"
credentials_file = %q
`, data, tg.Endpoint, tg.Bucket, tg.CredentialsFile(t))), 0o600))

	code, out, errs := runCLI(t, "", "storage", "migrate", "--to", "s3", "--dry-run", "--config", cfg)
	require.Equal(t, ExitOK, code, errs)
	assert.Equal(t, "dry run: 3 episode(s) in the data folder: 3 would be copied (5.9 KiB), 0 already in the bucket (0 B), 0 failed; nothing was changed\n", out)
	assert.Empty(t, tg.Keys(t, "pi-1/episodes/"))

	code, out, errs = runCLI(t, "", "storage", "migrate", "--to", "s3", "--config", cfg, "--log-format", "json")
	require.Equal(t, ExitOK, code, errs)
	assert.Equal(t, "3 episode(s) in the data folder: 3 copied (5.9 KiB), 0 already in the bucket (0 B), 0 failed (0 B)\n", out)
	assert.Contains(t, errs, `"outcome":"copied"`, "a log line per episode when stderr is not a terminal")
	assert.NotContains(t, errs, "aws_secret_access_key")
	assert.NotContains(t, errs, tg.Secret)

	// One local copy damaged: the others are deleted, it is kept, and the exit is 1.
	bad := filepath.Join(data, "episodes", "lab-01", shas[1])
	require.NoError(t, os.WriteFile(bad, bytes.Repeat([]byte{'z'}, 2000), 0o640))
	_, err = tg.Client().DeleteObject(context.Background(), deleteObject(tg, "pi-1/episodes/lab-01/"+shas[1]))
	require.NoError(t, err)
	code, out, errs = runCLI(t, "", "storage", "migrate", "--to", "s3", "--delete-local", "--json", "--config", cfg)
	assert.Equal(t, ExitFailure, code, errs)
	var sum migrate.Summary
	require.NoError(t, json.Unmarshal([]byte(out), &sum), out)
	assert.Equal(t, 2, sum.Present)
	assert.Equal(t, 1, sum.Failed)
	assert.Equal(t, 2, sum.Deleted)
	require.Len(t, sum.Failures, 1)
	assert.Equal(t, shas[1], sum.Failures[0].SHA256)
	assert.Contains(t, errs, "1 episode(s) are not in the bucket, or their local copy not deleted")
	assert.FileExists(t, bad)
	assert.NoFileExists(t, filepath.Join(data, "episodes", "lab-01", shas[0]))
}

func deleteObject(tg *objstoretest.Target, key string) *s3.DeleteObjectInput {
	return &s3.DeleteObjectInput{Bucket: &tg.Bucket, Key: &key}
}
