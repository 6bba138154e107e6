// Package objstoretest gives tests a real S3-compatible server: versitygw, started per
// test on a loopback port with its posix backend in a temporary folder (never a
// fake). Tests take a *Target, so the same cases can run against another server
// (SeaweedFS) given its endpoint and keys.
package objstoretest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/config"
)

// EnvVersitygw names the versitygw binary; without it, DefaultVersitygw.
const EnvVersitygw = "CIS490_VERSITYGW"

// DefaultVersitygw is where .ci/install-versitygw puts it.
const DefaultVersitygw = "/var/tmp/cis490-tools/bin/versitygw"

// Target is an S3-compatible server with a bucket for one test.
type Target struct {
	Name     string // "versitygw"
	Endpoint string // http://127.0.0.1:PORT
	Access   string
	Secret   string
	Bucket   string
	Region   string
	CAFile   string // the CA of an https Endpoint; "" for the system's

	// Stop and Start stop the server and start it again on the same port and data
	// (the store-down tests); nil for a server the test did not start.
	Stop  func(t testing.TB)
	Start func(t testing.TB)
	// Pause and Resume freeze and thaw the server (SIGSTOP, SIGCONT): a store that
	// takes no byte and answers nothing. Nil where Stop is.
	Pause  func(t testing.TB)
	Resume func(t testing.TB)

	client *s3.Client
}

// Server starts an S3-compatible server with a bucket for one test.
type Server struct {
	Name  string
	Start func(t testing.TB) *Target
}

// Servers are those Each runs a test against. A job with another server (SeaweedFS)
// appends it, from a test file of its own or behind its variable.
var Servers = []Server{{Name: "versitygw", Start: Versitygw}}

// Each runs test once for each of Servers, as a subtest named after it, against a
// server started for it.
func Each(t *testing.T, test func(t *testing.T, tg *Target)) {
	for _, srv := range Servers {
		t.Run(srv.Name, func(t *testing.T) { test(t, srv.Start(t)) })
	}
}

// VersitygwPath is the versitygw binary to run: $CIS490_VERSITYGW, else the default
// path. Under CI=true a missing one fails the test; otherwise it skips, saying so.
func VersitygwPath(t testing.TB) string {
	t.Helper()
	path := os.Getenv(EnvVersitygw)
	if path == "" {
		path = DefaultVersitygw
	}
	if _, err := os.Stat(path); err != nil {
		msg := fmt.Sprintf("versitygw not found at %s (set $%s, or run .ci/install-versitygw): %v", path, EnvVersitygw, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

// Versitygw starts versitygw for t on a free loopback port, with a fresh bucket; it is
// stopped when t ends.
func Versitygw(t testing.TB) *Target { return versitygw(t, "", "", "") }

// VersitygwTLS is Versitygw serving HTTPS with this certificate and key; CAFile is the
// CA to trust.
func VersitygwTLS(t testing.TB, certFile, keyFile, caFile string) *Target {
	return versitygw(t, certFile, keyFile, caFile)
}

func versitygw(t testing.TB, certFile, keyFile, caFile string) *Target {
	t.Helper()
	bin := VersitygwPath(t)
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "data"), 0o755))
	port := freePort(t)
	scheme := "http://"
	if certFile != "" {
		scheme = "https://"
	}
	tg := &Target{
		Name: "versitygw", Endpoint: scheme + port, Access: "cis490test", Secret: "s3cr3t-" + randomHex(12),
		Bucket: "episodes", Region: "us-east-1", CAFile: caFile,
	}
	var mu sync.Mutex
	var cmd *exec.Cmd
	start := func(t testing.TB) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		logf, err := os.OpenFile(filepath.Join(dir, "versitygw.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		require.NoError(t, err)
		defer logf.Close()
		args := []string{"--access", tg.Access, "--secret", tg.Secret, "--port", port, "--quiet", "--keep-alive"}
		if certFile != "" {
			args = append(args, "--cert", certFile, "--key", keyFile)
		}
		c := exec.Command(bin, append(args, "posix", filepath.Join(dir, "data"))...)
		c.Stdout, c.Stderr = logf, logf
		require.NoError(t, c.Start())
		cmd = c
		waitListening(t, port, filepath.Join(dir, "versitygw.log"))
	}
	stop := func(t testing.TB) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		if cmd == nil {
			return
		}
		_ = cmd.Process.Kill()
		_ = cmd.Process.Signal(syscall.SIGCONT) // a paused one dies only once thawed
		_ = cmd.Wait()
		cmd = nil
	}
	signal := func(sig syscall.Signal) func(t testing.TB) {
		return func(t testing.TB) {
			t.Helper()
			mu.Lock()
			defer mu.Unlock()
			require.NotNil(t, cmd, "versitygw is stopped")
			require.NoError(t, cmd.Process.Signal(sig))
		}
	}
	tg.Start, tg.Stop, tg.Pause, tg.Resume = start, stop, signal(syscall.SIGSTOP), signal(syscall.SIGCONT)
	start(t)
	t.Cleanup(func() { stop(t) })
	_, err := tg.Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &tg.Bucket})
	require.NoError(t, err)
	return tg
}

func waitListening(t testing.TB, addr, logPath string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("versitygw did not listen on %s within 20s: %v\n%s", addr, err, log)
		}
		time.Sleep(20 * time.Millisecond) // polling a port that is not bound yet: nothing to wait on
	}
}

func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// CredentialsFile writes tg's keys as an AWS credentials file in a temporary folder
// (mode 0600) and returns its path.
func (tg *Target) CredentialsFile(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s3-credentials")
	body := fmt.Sprintf("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", tg.Access, tg.Secret)
	require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
	return path
}

// Storage is [serve.storage] for tg, with prefix.
func (tg *Target) Storage(t testing.TB, prefix string) config.Storage {
	s := config.Default().Serve.Storage
	s.Backend, s.Endpoint, s.Bucket, s.Prefix, s.Region = config.BackendS3, tg.Endpoint, tg.Bucket, prefix, tg.Region
	s.CredentialsFile = tg.CredentialsFile(t)
	s.CAFile = tg.CAFile
	return s
}

// Client is a plain S3 client of tg, for a test to look at the bucket with.
func (tg *Target) Client() *s3.Client {
	if tg.client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if tg.CAFile != "" {
			pem, err := os.ReadFile(tg.CAFile)
			if err != nil {
				panic(err) // a test's own file
			}
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(pem)
			tr.TLSClientConfig = &tls.Config{RootCAs: pool}
		}
		tg.client = s3.New(s3.Options{
			Region: tg.Region, BaseEndpoint: aws.String(tg.Endpoint), UsePathStyle: true,
			Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
				return aws.Credentials{AccessKeyID: tg.Access, SecretAccessKey: tg.Secret}, nil
			}),
			RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
			ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
			HTTPClient:                 &http.Client{Timeout: 30 * time.Second, Transport: tr},
		})
	}
	return tg.client
}

// Keys lists the bucket's object keys under prefix, sorted.
func (tg *Target) Keys(t testing.TB, prefix string) []string {
	t.Helper()
	var keys []string
	p := s3.NewListObjectsV2Paginator(tg.Client(), &s3.ListObjectsV2Input{Bucket: &tg.Bucket, Prefix: &prefix})
	for p.HasMorePages() {
		out, err := p.NextPage(context.Background())
		require.NoError(t, err)
		for _, o := range out.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	sort.Strings(keys)
	return keys
}

// Multiparts lists the keys of the multipart uploads in progress under prefix.
func (tg *Target) Multiparts(t testing.TB, prefix string) []string {
	t.Helper()
	out, err := tg.Client().ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: &tg.Bucket, Prefix: &prefix})
	require.NoError(t, err)
	var keys []string
	for _, u := range out.Uploads {
		keys = append(keys, aws.ToString(u.Key))
	}
	return keys
}

// Get reads an object whole.
func (tg *Target) Get(t testing.TB, key string) []byte {
	t.Helper()
	out, err := tg.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: &tg.Bucket, Key: &key})
	require.NoError(t, err, "get %s", key)
	defer out.Body.Close()
	data, err := io.ReadAll(out.Body)
	require.NoError(t, err)
	return data
}

// Metadata is an object's user metadata (x-amz-meta-*).
func (tg *Target) Metadata(t testing.TB, key string) map[string]string {
	t.Helper()
	out, err := tg.Client().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &tg.Bucket, Key: &key})
	require.NoError(t, err, "head %s", key)
	return out.Metadata
}

// Put writes an object directly (a test's "someone else's object").
func (tg *Target) Put(t testing.TB, key string, data []byte) {
	t.Helper()
	_, err := tg.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: &tg.Bucket, Key: &key, Body: bytes.NewReader(data)})
	require.NoError(t, err)
}

// StartMultipart begins a multipart upload under key and leaves it (a crash's
// leftover), returning its id.
func (tg *Target) StartMultipart(t testing.TB, key string) string {
	t.Helper()
	out, err := tg.Client().CreateMultipartUpload(context.Background(), &s3.CreateMultipartUploadInput{Bucket: &tg.Bucket, Key: &key})
	require.NoError(t, err)
	return aws.ToString(out.UploadId)
}

// HasKey reports whether keys holds key, for messages that show the whole list.
func HasKey(keys []string, key string) bool {
	for _, k := range keys {
		if k == key {
			return true
		}
	}
	return false
}
