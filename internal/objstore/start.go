package objstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/rs/xid"

	"github.com/cis490/cis490/internal/store"
)

// probeTimeout bounds the start-up probe; retryReadyAfter spaces the probes of a
// store that is down, which uploads trigger.
const (
	probeTimeout    = 15 * time.Second
	retryReadyAfter = 2 * time.Second
)

// Start probes the bucket (reachable, writable, conditional writes) and aborts the
// multipart uploads under the prefix older than StaleAfter, then sweeps every
// SweepEvery until Close or ctx ends. An error means the store is not reachable yet:
// the receiver still starts, uploads are answered 503 until a probe succeeds (each
// upload tries one, at most one every two seconds), and the sweep runs then.
func (s *Store) Start(ctx context.Context) error {
	err := s.ensureReady(ctx)
	s.wg.Go(func() { s.sweepLoop(s.bg) })
	return err
}

func (s *Store) sweepLoop(ctx context.Context) {
	t := time.NewTicker(s.opts.SweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.ensureReady(ctx); err != nil {
			continue // ensureReady sweeps once it succeeds
		}
		if _, err := s.SweepStale(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn().Err(err).Msg("sweeping stale multipart uploads failed; tried again in an hour")
		}
	}
}

// ensureReady runs the probe until it has succeeded once, then the first sweep.
func (s *Store) ensureReady(ctx context.Context) error {
	if s.ready.Load() {
		return nil
	}
	s.readyMu.Lock()
	defer s.readyMu.Unlock()
	if s.ready.Load() {
		return nil
	}
	if !s.lastAttempt.IsZero() && time.Since(s.lastAttempt) < retryReadyAfter {
		return s.lastErr
	}
	s.lastAttempt = time.Now()
	c := s.probe(ctx)
	if c.Err != nil {
		s.lastErr = c.Err
		// Each upload tries again while the store is down: say so once a minute.
		if s.lastLogged.IsZero() || time.Since(s.lastLogged) >= time.Minute {
			s.lastLogged = time.Now()
			s.log.Error().Err(c.Err).Str("endpoint", s.cfg.Endpoint).
				Msg("the episode bucket is not reachable or not writable: uploads are answered 503 until it is")
		}
		return c.Err
	}
	s.lastErr = nil
	s.conditional.Store(c.ConditionalWrites && !s.opts.NoConditionalWrites)
	s.checksums.Store(c.Checksums)
	s.ready.Store(true)
	if s.conditional.Load() {
		s.log.Info().Str("server", c.Server).Bool("checksums", c.Checksums).Msg("the episode bucket is reachable and writable, with conditional writes")
	} else {
		s.log.Warn().Str("server", c.Server).Str("endpoint", s.cfg.Endpoint).
			Msg("the store does not refuse a second If-None-Match: * write: identical uploads are ordered by a lock in this receiver instead; never let two receivers share serve.storage.prefix")
	}
	s.wg.Go(func() { // without readyMu: uploads may start meanwhile
		if _, err := s.SweepStale(s.bg); err != nil && s.bg.Err() == nil {
			s.log.Warn().Err(err).Msg("sweeping stale multipart uploads failed; tried again in an hour")
		}
	})
	return nil
}

// Check is what a probe of the bucket found (doctor's bucket check).
type Check struct {
	Server            string // the store's Server header, when it sends one
	Reachable         bool   // it answered
	Writable          bool   // an object could be written and deleted under the prefix
	ConditionalWrites bool   // a second If-None-Match: * write was refused, on PutObject and CompleteMultipartUpload
	Checksums         bool   // a PutObject with a wrong x-amz-checksum-sha256 was refused
	Err               error  // why not; wraps store.ErrUnavailable
}

// Check probes the bucket now: it writes and deletes objects under
// <prefix>.cis490-probe/.
func (s *Store) Check(ctx context.Context) Check { return s.probe(ctx) }

func (s *Store) probe(ctx context.Context) Check {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	var c Check
	key := s.prefix + ".cis490-probe/" + xid.New().String()
	put := func() (*s3.PutObjectOutput, error) {
		data := []byte("cis490 probe: safe to delete\n")
		out, err := s.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: &s.cfg.Bucket, Key: &key, Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data))),
			IfNoneMatch: aws.String("*"),
		})
		if isPreconditionFailed(err) {
			s.observe(ctx, opPut, nil) // what the second write is for
		} else {
			s.observe(ctx, opPut, err)
		}
		return out, err
	}
	out, err := put()
	if err != nil {
		c.Reachable = statusOf(err) != 0
		c.Server = serverHeader(err)
		c.Err = unavailable(ctx, opPut, key, err)
		return c
	}
	c.Reachable, c.Writable = true, true
	c.Server = serverOf(out.ResultMetadata)
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), probeTimeout)
		defer cancel()
		_, err := s.client.DeleteObject(dctx, &s3.DeleteObjectInput{Bucket: &s.cfg.Bucket, Key: &key})
		s.observe(dctx, opDelete, err)
		if err != nil && c.Err == nil {
			c.Writable, c.Err = false, unavailable(dctx, opDelete, key, err)
		}
	}()
	_, err = put()
	switch {
	case isPreconditionFailed(err):
	case err == nil:
		return c // the second write went through: no conditional writes
	default:
		c.Err = unavailable(ctx, opPut, key, err)
		return c
	}
	ok, err := s.probeConditionalComplete(ctx, key)
	if err != nil {
		c.Err = err
		return c
	}
	c.ConditionalWrites = ok
	c.Checksums, c.Err = s.probeChecksum(ctx, key+"-checksum")
	return c
}

// probeChecksum writes key with a wrong x-amz-checksum-sha256 and reports whether the
// store refused it.
func (s *Store) probeChecksum(ctx context.Context, key string) (bool, error) {
	data := []byte("cis490 probe: a wrong checksum\n")
	wrong := sha256.Sum256([]byte("something else"))
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &s.cfg.Bucket, Key: &key, Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data))),
		ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(wrong[:])),
	})
	if st := statusOf(err); st >= 400 && st < 500 {
		s.observe(ctx, opPut, nil)
		return true, nil
	}
	s.observe(ctx, opPut, err)
	if err != nil {
		return false, unavailable(ctx, opPut, key, err)
	}
	_, err = s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.cfg.Bucket, Key: &key})
	s.observe(ctx, opDelete, err)
	if err != nil {
		return false, unavailable(ctx, opDelete, key, err)
	}
	return false, nil
}

// probeConditionalComplete completes a one-part upload onto key, which exists, with
// If-None-Match: *, and reports whether the server refused it.
func (s *Store) probeConditionalComplete(ctx context.Context, key string) (bool, error) {
	out, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &s.cfg.Bucket, Key: &key})
	s.observe(ctx, opCreate, err)
	if err != nil {
		return false, unavailable(ctx, opCreate, key, err)
	}
	id := out.UploadId
	defer func() {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), probeTimeout)
		defer cancel()
		_, err := s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{Bucket: &s.cfg.Bucket, Key: &key, UploadId: id})
		if codeOf(err) == "NoSuchUpload" {
			err = nil
		}
		s.observe(actx, opAbort, err)
	}()
	part, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
		Bucket: &s.cfg.Bucket, Key: &key, UploadId: id, PartNumber: aws.Int32(1),
		Body: bytes.NewReader([]byte("x")), ContentLength: aws.Int64(1),
	})
	s.observe(ctx, opUploadPart, err)
	if err != nil {
		return false, unavailable(ctx, opUploadPart, key, err)
	}
	_, err = s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &s.cfg.Bucket, Key: &key, UploadId: id, IfNoneMatch: aws.String("*"),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{ETag: part.ETag, PartNumber: aws.Int32(1)}}},
	})
	switch {
	case isPreconditionFailed(err):
		s.observe(ctx, opComplete, nil)
		return true, nil
	case err == nil:
		s.observe(ctx, opComplete, nil)
		return false, nil
	}
	s.observe(ctx, opComplete, err)
	return false, unavailable(ctx, opComplete, key, err)
}

func serverOf(md middleware.Metadata) string {
	if raw, ok := awsmiddleware.GetRawResponse(md).(*smithyhttp.Response); ok && raw != nil {
		return raw.Header.Get("Server")
	}
	return ""
}

func serverHeader(err error) string {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		return re.Response.Header.Get("Server")
	}
	return ""
}

// SweepStale aborts the multipart uploads under <prefix>episodes/ and the probe's
// prefix that were initiated more than StaleAfter ago (by Options.Now) and are not
// this process's: what a crash or a failed abort left. It returns how many.
func (s *Store) SweepStale(ctx context.Context) (int, error) {
	cutoff := s.opts.Now().Add(-s.opts.StaleAfter)
	aborted := 0
	for _, prefix := range []string{s.prefix + "episodes/", s.prefix + ".cis490-probe/"} {
		n, err := s.sweep(ctx, prefix, cutoff)
		aborted += n
		if err != nil {
			return aborted, err
		}
	}
	if aborted > 0 {
		s.log.Info().Int("aborted", aborted).Str("older_than", s.opts.StaleAfter.String()).
			Msg("aborted multipart uploads left by interrupted uploads")
	}
	return aborted, nil
}

func (s *Store) sweep(ctx context.Context, prefix string, cutoff time.Time) (int, error) {
	aborted := 0
	var keyMarker, idMarker *string
	for {
		out, err := s.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{
			Bucket: &s.cfg.Bucket, Prefix: &prefix, KeyMarker: keyMarker, UploadIdMarker: idMarker,
		})
		s.observe(ctx, opList, err)
		if err != nil {
			return aborted, unavailable(ctx, opList, prefix, err)
		}
		for _, up := range out.Uploads {
			if up.Initiated == nil || !up.Initiated.Before(cutoff) || s.inflight.has(aws.ToString(up.UploadId)) {
				continue
			}
			_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &s.cfg.Bucket, Key: up.Key, UploadId: up.UploadId})
			if codeOf(err) == "NoSuchUpload" {
				err = nil
			}
			s.observe(ctx, opAbort, err)
			if err != nil {
				return aborted, unavailable(ctx, opAbort, aws.ToString(up.Key), err)
			}
			aborted++
		}
		if !aws.ToBool(out.IsTruncated) {
			return aborted, nil
		}
		keyMarker, idMarker = out.NextKeyMarker, out.NextUploadIdMarker
		if keyMarker == nil && idMarker == nil {
			return aborted, fmt.Errorf("%w: list multipart uploads: truncated without a next marker", store.ErrUnavailable)
		}
	}
}
