package objstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/cis490/cis490/internal/protocol"
	"github.com/cis490/cis490/internal/store"
)

// The object metadata an episode carries (x-amz-meta-<name>): its sidecar's fields,
// and the upload that stored it, so that an upload whose completion was answered
// ambiguously (a retried request, a 412) can tell its own object from a rival's.
const (
	metaEpisode    = "cis490-episode"
	metaReceivedAt = "cis490-received-at"
	metaCommit     = "cis490-commit"
	metaRemote     = "cis490-remote"
	metaRepaired   = "cis490-repaired"
	metaUpload     = "cis490-upload"
)

// objectMeta is meta as object metadata; values are escaped, since S3 keeps only
// printable ASCII in headers.
func objectMeta(meta store.EpisodeMeta, upload string) map[string]string {
	m := map[string]string{
		metaEpisode:    url.PathEscape(meta.Episode),
		metaReceivedAt: meta.ReceivedAt.UTC().Format(time.RFC3339Nano),
		metaCommit:     url.PathEscape(meta.Commit),
		metaRemote:     url.PathEscape(meta.Remote),
		metaUpload:     upload,
	}
	if meta.Repaired {
		m[metaRepaired] = "true"
	}
	return m
}

// episodeMeta reads objectMeta back; size is the object's.
func episodeMeta(m map[string]string, size int64, modified time.Time) store.EpisodeMeta {
	unescape := func(s string) string {
		if u, err := url.PathUnescape(s); err == nil {
			return u
		}
		return s
	}
	meta := store.EpisodeMeta{
		Episode: unescape(m[metaEpisode]), Size: size, Commit: unescape(m[metaCommit]), Remote: unescape(m[metaRemote]),
		Repaired: m[metaRepaired] == "true",
	}
	if t, err := time.Parse(time.RFC3339Nano, m[metaReceivedAt]); err == nil {
		meta.ReceivedAt = t.UTC()
	} else {
		meta.ReceivedAt, meta.Repaired = modified.UTC(), true // not written by a receiver
	}
	return meta
}

// head is an episode object as HEAD finds it; ok is false when there is none.
type head struct {
	meta   store.EpisodeMeta
	upload string
}

func (s *Store) head(ctx context.Context, key string) (head, bool, error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.cfg.Bucket, Key: &key})
	if isNotFound(err) {
		s.observe(ctx, opHead, nil)
		return head{}, false, nil
	}
	s.observe(ctx, opHead, err)
	if err != nil {
		return head{}, false, unavailable(ctx, opHead, key, err)
	}
	return head{
		meta:   episodeMeta(out.Metadata, aws.ToInt64(out.ContentLength), aws.ToTime(out.LastModified)),
		upload: out.Metadata[metaUpload],
	}, true, nil
}

// Stored answers a retry of host's sha without its body (store.Episodes). The object's
// metadata is its sidecar; a missing <sha>.json is written from it (or, for an object
// without cis490 metadata, from retry) before answering.
func (s *Store) Stored(ctx context.Context, host, sha string, retry store.EpisodeMeta) (store.PutResult, bool, error) {
	if err := checkNames(host, sha, retry.Episode); err != nil {
		return store.PutResult{}, false, err
	}
	h, ok, err := s.head(ctx, s.Key(host, sha))
	if err != nil || !ok {
		return store.PutResult{}, false, err
	}
	meta := h.meta
	if meta.Episode == "" {
		meta.Episode, meta.Commit, meta.Remote, meta.Repaired = retry.Episode, retry.Commit, retry.Remote, true
	}
	if err := s.ensureSidecar(ctx, host, sha, meta); err != nil {
		return store.PutResult{}, false, err
	}
	return store.PutResult{SHA256: sha, Size: meta.Size, ReceivedAt: meta.ReceivedAt, Episode: meta.Episode}, true, nil
}

// Has reports whether host's sha is stored, false when the store cannot tell.
func (s *Store) Has(ctx context.Context, host, sha string) bool {
	if !validHost(host) || !protocol.ValidSHA256(sha) {
		return false
	}
	_, ok, err := s.head(ctx, s.Key(host, sha))
	return err == nil && ok
}

// Stat is what the object's metadata records of host's sha.
func (s *Store) Stat(ctx context.Context, host, sha string) (store.EpisodeMeta, bool, error) {
	if !validHost(host) || !protocol.ValidSHA256(sha) {
		return store.EpisodeMeta{}, false, fmt.Errorf("%w: host %q, sha256 %q", store.ErrBadName, host, sha)
	}
	h, ok, err := s.head(ctx, s.Key(host, sha))
	return h.meta, ok, err
}

// Open reads host's episode sha; the caller closes it. A missing one is an error that
// wraps fs.ErrNotExist-like ErrNotStored.
func (s *Store) Open(ctx context.Context, host, sha string) (io.ReadCloser, error) {
	if !validHost(host) || !protocol.ValidSHA256(sha) {
		return nil, fmt.Errorf("%w: host %q, sha256 %q", store.ErrBadName, host, sha)
	}
	key := s.Key(host, sha)
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.cfg.Bucket, Key: &key})
	if isNotFound(err) {
		s.observe(ctx, opGet, nil)
		return nil, fmt.Errorf("%s: %w", key, ErrNotStored)
	}
	s.observe(ctx, opGet, err)
	if err != nil {
		return nil, unavailable(ctx, opGet, key, err)
	}
	return out.Body, nil
}

// ErrNotStored is Open's error for an episode the bucket does not have.
var ErrNotStored = errors.New("no such episode in the bucket")

// sidecar is the <sha>.json object of meta: the same bytes whoever writes it, so a
// retry that writes it while the winner does cannot make it disagree.
func sidecar(meta store.EpisodeMeta) []byte {
	data, _ := json.Marshal(meta) // a struct of strings, a time and numbers
	return data
}

func (s *Store) ensureSidecar(ctx context.Context, host, sha string, meta store.EpisodeMeta) error {
	key := s.Key(host, sha) + ".json"
	_, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.cfg.Bucket, Key: &key})
	if err == nil {
		s.observe(ctx, opHead, nil)
		return nil
	}
	if !isNotFound(err) {
		s.observe(ctx, opHead, err)
		return unavailable(ctx, opHead, key, err)
	}
	if err := s.putSidecar(ctx, host, sha, meta); err != nil {
		return err
	}
	s.log.Info().Str("key", key).Str("episode", meta.Episode).Msg("wrote an episode's missing metadata object from its object metadata")
	return nil
}

func (s *Store) putSidecar(ctx context.Context, host, sha string, meta store.EpisodeMeta) error {
	key := s.Key(host, sha) + ".json"
	data := sidecar(meta)
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &s.cfg.Bucket, Key: &key, Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data))),
		ContentType: aws.String("application/json"), IfNoneMatch: s.ifNoneMatch(),
	})
	if isPreconditionFailed(err) { // written by a racing duplicate: the same bytes
		err = nil
	}
	s.observe(ctx, opPut, err)
	if err != nil {
		return unavailable(ctx, opPut, key, err)
	}
	return nil
}

// ifNoneMatch is "*" for servers that honour it, nil for those that do not (a
// server that rejects the header outright would fail every write).
func (s *Store) ifNoneMatch() *string {
	if s.conditional.Load() {
		return aws.String("*")
	}
	return nil
}

func statusOf(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func codeOf(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func isNotFound(err error) bool {
	if err == nil {
		return false
	}
	switch codeOf(err) {
	case "NoSuchKey", "NotFound":
		return true
	}
	return statusOf(err) == http.StatusNotFound && codeOf(err) != "NoSuchBucket" && codeOf(err) != "NoSuchUpload"
}

func isPreconditionFailed(err error) bool {
	return err != nil && (statusOf(err) == http.StatusPreconditionFailed || codeOf(err) == "PreconditionFailed")
}

func checkNames(host, sha, episode string) error {
	if !validHost(host) || !protocol.ValidSHA256(sha) || !protocol.ValidEpisode(episode) {
		return fmt.Errorf("%w: host %q, episode %q, sha256 %q", store.ErrBadName, host, episode, sha)
	}
	return nil
}

func validHost(host string) bool {
	h, ok := protocol.NormalizeHost(host)
	return ok && h == host
}
