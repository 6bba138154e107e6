package config

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStorageKeys(t *testing.T) {
	isolate(t)
	d := Default().Serve.Storage
	assert.Equal(t, Storage{Backend: BackendFS, Region: "us-east-1", PathStyle: true, Profile: "default", PartSize: 8 * MiB, SinglePutMax: 5 * GiB}, d)

	cfg, err := Load(New(), writeConfig(t, `
[serve.storage]
backend = "s3"
endpoint = "http://127.0.0.1:7070"
bucket = "episodes"
prefix = "pi-1"
credentials_file = "/etc/cis490/s3-credentials"
part_size = "16MiB"
`))
	require.NoError(t, err)
	s := cfg.Serve.Storage
	assert.Equal(t, BackendS3, s.Backend)
	assert.Equal(t, 16*MiB, s.PartSize)
	assert.Equal(t, "pi-1/", s.ObjectPrefix(), "a prefix is a folder")
	assert.Equal(t, "", Storage{}.ObjectPrefix())
	assert.Equal(t, "a/b/", Storage{Prefix: "a/b/"}.ObjectPrefix())
}

func TestStorageBadValues(t *testing.T) {
	for _, tc := range []struct {
		name, toml string
		want       []string
		notWant    string
	}{
		{"bad backend", `backend = "nfs"`, []string{`bad value for serve.storage.backend: "nfs" (use fs or s3)`}, ""},
		{"s3 without bucket or credentials", `backend = "s3"`, []string{
			"bad value for serve.storage.bucket: empty: backend s3 needs the bucket's name",
			"bad value for serve.storage.credentials_file: empty: backend s3 needs a credentials file",
		}, ""},
		{"endpoint with keys", `backend = "s3"
bucket = "b"
credentials_file = "/c"
endpoint = "https://AKIA:s3cr3t@s3.lab"`, []string{"serve.storage.endpoint: has credentials in it: remove them"}, "s3cr3t"},
		{"endpoint not a URL", `backend = "s3"
bucket = "b"
credentials_file = "/c"
endpoint = "s3.lab:8333"`, []string{`bad value for serve.storage.endpoint: "s3.lab:8333" (want an http:// or https:// URL`}, ""},
		{"endpoint with the bucket in it", `backend = "s3"
bucket = "b"
credentials_file = "/c"
endpoint = "https://s3.lab/b"`, []string{"has a path or query: give the store's address only"}, ""},
		{"bad prefix", `backend = "s3"
bucket = "b"
credentials_file = "/c"
prefix = "../up"`, []string{`bad value for serve.storage.prefix: "../up"`}, ""},
		{"small part", `backend = "s3"
bucket = "b"
credentials_file = "/c"
part_size = "1MiB"`, []string{"bad value for serve.storage.part_size: 1MiB (between 5MiB and 5GiB"}, ""},
		{"too many parts", `backend = "s3"
bucket = "b"
credentials_file = "/c"
part_size = "5MiB"`, []string{"would need more than 10000 parts; raise part_size to at least 7MiB"}, ""},
		{"bucket with a slash", `backend = "s3"
bucket = "b/c"
credentials_file = "/c"`, []string{`bad value for serve.storage.bucket: "b/c"`}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			isolate(t)
			_, err := Load(New(), writeConfig(t, "[serve]\nmax_episode_bytes = \"64GiB\"\n[serve.storage]\n"+tc.toml+"\n"))
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			if tc.notWant != "" {
				assert.NotContains(t, err.Error(), tc.notWant, "no key in the message")
			}
		})
	}
}

func TestStorageFSIgnoresTheS3Keys(t *testing.T) {
	isolate(t)
	_, err := Load(New(), writeConfig(t, "[serve.storage]\nbackend = \"fs\"\npart_size = \"1MiB\"\n"))
	require.NoError(t, err, "s3's keys are checked only when they are used")
}
