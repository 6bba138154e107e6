package e2e

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/alerts"
	"github.com/cis490/cis490/internal/fleethealth"
	"github.com/cis490/cis490/internal/objstore/objstoretest"
	"github.com/cis490/cis490/internal/protocol"
)

// s3Pi is a receiver's lab-host.toml with its episodes in tg's bucket, in open mode on
// a fixed loopback port (fleet health finds the receiver through serve.listen).
type s3Pi struct {
	dir, cfg, data string
	env            []string
}

func newS3Pi(t *testing.T, tg *objstoretest.Target) *s3Pi {
	t.Helper()
	dir := t.TempDir()
	p := &s3Pi{dir: dir, cfg: filepath.Join(dir, "lab-host.toml"), data: filepath.Join(dir, "data"), env: Env(t)}
	toml := fmt.Sprintf(`host = "pi"
[serve]
listen = %q
data_dir = %q
min_free_bytes = "1MiB"
[serve.storage]
backend = "s3"
endpoint = %q
bucket = %q
prefix = "pi-1/"
region = %q
credentials_file = %q
part_size = "5MiB"
[fleet_health]
syslog = false
`, freeAddr(t), p.data, tg.Endpoint, tg.Bucket, tg.Region, tg.CredentialsFile(t))
	require.NoError(t, os.WriteFile(p.cfg, []byte(toml), 0o600))
	return p
}

func (p *s3Pi) run(t *testing.T, args ...string) Result {
	t.Helper()
	return Run(t, bin, p.env, nil, append([]string{"--config", p.cfg}, args...)...)
}

// alerts reads alerts.jsonl back; none yet is no line.
func (p *s3Pi) alerts(t *testing.T) []alerts.Alert {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(p.data, "alerts.jsonl"))
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var out []alerts.Alert
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		a, ok := alerts.Parse([]byte(l))
		require.True(t, ok, l)
		out = append(out, a)
	}
	return out
}

func storageLines(lines []alerts.Alert) []string {
	var out []string
	for _, a := range lines {
		if a.Symptom == fleethealth.StorageDown {
			out = append(out, a.Status+" "+a.Host+"/"+a.Symptom)
		}
	}
	return out
}

func randomBody(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

// The real receiver on a real versitygw: the store stopped is storage-down on the
// Pi's row at the next fleet-health check (uploads meanwhile 503, the host keeps its
// file); started again and an upload through, the next check resolves it.
func TestStorageDownOnThePi(t *testing.T) {
	t.Parallel()
	tg := objstoretest.Versitygw(t)
	p := newS3Pi(t, tg)
	srv := StartServe(t, bin, p.env, "http", "--config", p.cfg)

	code, _ := put(t, srv.URL, "lab-01", "", "ep-1.tar.zst", randomBody(t, 1000))
	require.Equal(t, http.StatusCreated, code)
	fh := p.run(t, "fleet-health", "check")
	require.Equal(t, 0, fh.Code, fh.Stderr)
	assert.Empty(t, storageLines(p.alerts(t)), "the store answers")

	tg.Stop(t)
	body := randomBody(t, 2000)
	code, answer := put(t, srv.URL, "lab-01", "", "ep-2.tar.zst", body)
	assert.Equal(t, http.StatusServiceUnavailable, code, "%v", answer)
	assert.Equal(t, protocol.CodeStorageUnavailable, answer["code"])

	fh = p.run(t, "fleet-health", "check")
	require.Equal(t, 0, fh.Code, fh.Stderr)
	lines := p.alerts(t)
	require.Equal(t, []string{"firing pi/storage-down"}, storageLines(lines), "%s", fh.Stderr)
	var down alerts.Alert
	for _, a := range lines {
		if a.Symptom == fleethealth.StorageDown {
			down = a
		}
	}
	assert.Equal(t, fleethealth.Critical, down.Severity)
	assert.Contains(t, down.Summary, "pi's object store is unreachable")
	assert.Contains(t, down.Summary, "fleet health's own request to bucket "+tg.Bucket+" at "+tg.Endpoint+" failed")
	assert.Contains(t, down.Summary, "the receiver's requests to it have failed since")
	var ev map[string]any
	require.NoError(t, json.Unmarshal(down.Evidence, &ev))
	assert.Equal(t, false, ev["receiver_ok"])
	assert.NotNil(t, ev["failing_since"])
	assert.Contains(t, ev["error"], "connection refused")
	assert.False(t, down.Since.IsZero())
	assert.NotContains(t, string(down.Evidence)+down.Summary, tg.Secret)

	tg.Start(t)
	code, answer = put(t, srv.URL, "lab-01", "", "ep-2.tar.zst", body)
	require.Equal(t, http.StatusCreated, code, "the host's retry: %v", answer)
	fh = p.run(t, "fleet-health", "check")
	require.Equal(t, 0, fh.Code, fh.Stderr)
	assert.Equal(t, []string{"firing pi/storage-down", "resolved pi/storage-down"}, storageLines(p.alerts(t)))
	assert.True(t, objstoretest.HasKey(tg.Keys(t, "pi-1/"), "pi-1/episodes/lab-01/"+sum(body)))
}

// doctor on the Pi runs the storage check against the configured bucket.
func TestPiDoctorChecksTheBucket(t *testing.T) {
	t.Parallel()
	tg := objstoretest.Versitygw(t)
	p := newS3Pi(t, tg)
	check := func() (Result, map[string]any) {
		res := p.run(t, "doctor", "--json", "--role", "receiver")
		var report struct {
			Checks []map[string]any `json:"checks"`
		}
		require.NoError(t, json.Unmarshal([]byte(res.Stdout), &report), "%s\n%s", res.Stdout, res.Stderr)
		for _, c := range report.Checks {
			if c["id"] == "storage" {
				return res, c
			}
		}
		t.Fatalf("no storage check in %s", res.Stdout)
		return res, nil
	}
	_, c := check()
	assert.Equal(t, "ok", c["status"], "%v", c)
	assert.Contains(t, c["summary"], "is reachable and writable, with conditional writes")

	tg.Stop(t)
	res, c := check()
	assert.Equal(t, 1, res.Code)
	assert.Equal(t, "fail", c["status"])
	assert.Contains(t, c["summary"], "does not answer: dial tcp")
	assert.Contains(t, c["hint"], "start the object store")
	assert.Contains(t, res.Stderr, "storage")
}
