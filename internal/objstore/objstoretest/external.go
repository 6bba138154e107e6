package objstoretest

import (
	"context"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"
)

// A server that a job started itself (.ci/seaweedfs-test starts SeaweedFS): with
// $CIS490_S3_ENDPOINT set, Each runs every test against it as well, named
// $CIS490_S3_NAME ("s3" when unset), each test in a bucket of its own.
const (
	EnvEndpoint  = "CIS490_S3_ENDPOINT"
	EnvAccessKey = "CIS490_S3_ACCESS_KEY"
	EnvSecretKey = "CIS490_S3_SECRET_KEY"
	EnvRegion    = "CIS490_S3_REGION"
	EnvName      = "CIS490_S3_NAME"
)

func init() {
	if os.Getenv(EnvEndpoint) == "" {
		return
	}
	name := os.Getenv(EnvName)
	if name == "" {
		name = "s3"
	}
	Servers = append(Servers, Server{Name: name, Start: External})
}

// External is the server of $CIS490_S3_ENDPOINT with a new bucket for t, emptied and
// removed when t ends. Stop, Start, Pause and Resume are nil: the test did not start
// it, so the store-down cases run against versitygw only.
func External(t testing.TB) *Target {
	t.Helper()
	tg := &Target{
		Name: os.Getenv(EnvName), Endpoint: os.Getenv(EnvEndpoint), Access: os.Getenv(EnvAccessKey), Secret: os.Getenv(EnvSecretKey),
		Bucket: "cis490-" + randomHex(6), Region: os.Getenv(EnvRegion),
	}
	if tg.Region == "" {
		tg.Region = "us-east-1"
	}
	require.NotEmpty(t, tg.Access, "$%s is set: set $%s and $%s too", EnvEndpoint, EnvAccessKey, EnvSecretKey)
	_, err := tg.Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &tg.Bucket})
	require.NoError(t, err, "create bucket %s at %s", tg.Bucket, tg.Endpoint)
	t.Cleanup(func() { tg.remove(t) })
	return tg
}

// remove aborts the bucket's multipart uploads, deletes its objects and then it.
func (tg *Target) remove(t testing.TB) {
	ctx := context.Background()
	c := tg.Client()
	if ups, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &tg.Bucket}); err == nil {
		for _, u := range ups.Uploads {
			_, _ = c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &tg.Bucket, Key: u.Key, UploadId: u.UploadId})
		}
	}
	for _, key := range tg.Keys(t, "") {
		_, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &tg.Bucket, Key: aws.String(key)})
		if err != nil {
			t.Logf("remove %s/%s: %v", tg.Bucket, key, err)
		}
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: &tg.Bucket}); err != nil {
		t.Logf("remove bucket %s: %v", tg.Bucket, err)
	}
}
