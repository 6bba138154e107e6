package objstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/rs/xid"

	"github.com/cis490/cis490/internal/store"
)

// PutEpisode streams body into a multipart upload under the episode's final key,
// hashing it on the way, and completes the upload only once the whole body is in and
// matches sha; on any failure (mismatch, too large, the client gone, ctx ended, the
// store failing) the upload is aborted, so nothing of it is ever visible. The
// completion is conditional (If-None-Match: *): of racing identical uploads, one
// stores the object and is Created, the others are duplicates.
//
// A body whose length is known (meta.Size ≥ 0, the request's Content-Length) is sent
// part by part straight from the request: memory is a few socket buffers an upload,
// whatever the part size. A body without one is read a part at a time into one of a
// few shared buffers (chunkedBuffers).
//
// Where the store checks x-amz-checksum-sha256 (the probe tries a wrong one), a body
// of known length up to serve.storage.single_put_max is instead streamed as one
// conditional PutObject that carries the declared SHA-256: the store refuses it
// unless the bytes it received match, so nothing unverified is ever visible, and the
// store writes each byte once rather than as parts and again as their assembly
// (bench/README.md).
func (s *Store) PutEpisode(ctx context.Context, host, sha string, body io.Reader, maxBytes int64, meta store.EpisodeMeta) (store.PutResult, error) {
	if err := checkNames(host, sha, meta.Episode); err != nil {
		return store.PutResult{}, err
	}
	if meta.Size > maxBytes {
		return store.PutResult{}, fmt.Errorf("%w: %d bytes declared, at most %d", store.ErrTooLarge, meta.Size, maxBytes)
	}
	if err := s.ensureReady(ctx); err != nil {
		return store.PutResult{}, err
	}
	key := s.Key(host, sha)
	conditional := s.ifNoneMatch() != nil
	if !conditional {
		unlock := s.locks.lock(key)
		defer unlock()
		// The upload that held the lock may have stored it.
		if res, ok, err := s.Stored(ctx, host, sha, meta); err != nil || ok {
			return res, err
		}
	}
	if meta.ReceivedAt.IsZero() {
		meta.ReceivedAt = time.Now()
	}
	meta.ReceivedAt = meta.ReceivedAt.UTC()
	u := &upload{s: s, ctx: ctx, key: key, token: xid.New().String(), hash: sha256.New()}
	if meta.Size == 0 {
		return u.putEmpty(host, sha, body, meta)
	}
	if meta.Size > 0 && meta.Size <= s.singlePutMax && s.checksums.Load() {
		return u.putWhole(host, sha, body, meta)
	}
	if err := u.create(meta); err != nil {
		return store.PutResult{}, err
	}
	defer u.abortUnlessDone()
	if err := u.send(body, maxBytes, meta.Size); err != nil {
		return store.PutResult{}, err
	}
	if got := hex.EncodeToString(u.hash.Sum(nil)); got != sha {
		return store.PutResult{}, &store.DigestMismatchError{Declared: sha, Got: got}
	}
	if u.size == 0 { // a chunked body that was empty: S3 wants no empty multipart object
		return u.putEmpty(host, sha, bytes.NewReader(nil), meta)
	}
	ctx, cancel := u.finish(ctx)
	defer cancel()
	created, err := u.complete()
	if err != nil {
		return store.PutResult{}, err
	}
	if !created {
		return s.duplicate(ctx, host, sha, meta)
	}
	meta.Size = u.size
	if err := s.putSidecar(ctx, host, sha, meta); err != nil {
		// The tarball is stored: the client's retry is a duplicate, and writes the
		// sidecar then (Stored).
		return store.PutResult{}, fmt.Errorf("store episode %s metadata: %w", meta.Episode, err)
	}
	return store.PutResult{SHA256: sha, Size: u.size, Created: true, ReceivedAt: meta.ReceivedAt, Episode: meta.Episode}, nil
}

// finish detaches the upload from the end of ctx once its whole body is in and
// verified: what is left (complete, and the HEAD and sidecar after it) is the store's
// work, and the episode valid. A receiver's request context ends soon after the body
// has been read to its end (net/http's background read of the connection hits the
// read deadline the stall timeout set), which must not turn a valid upload into a
// "cut off" one. The work left is bounded by a timeout of its own instead.
func (u *upload) finish(ctx context.Context) (context.Context, context.CancelFunc) {
	s := u.s
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*s.opts.StallTimeout+time.Duration(u.size/(4<<20))*time.Second)
	u.ctx = ctx
	return ctx, cancel
}

// duplicate answers an upload that lost the race to the object.
func (s *Store) duplicate(ctx context.Context, host, sha string, meta store.EpisodeMeta) (store.PutResult, error) {
	res, ok, err := s.Stored(ctx, host, sha, meta)
	if err == nil && !ok {
		err = fmt.Errorf("%w: %s: the conditional write was refused, yet no object is there", store.ErrUnavailable, s.Key(host, sha))
	}
	return res, err
}

// upload is one multipart upload in progress.
type upload struct {
	s          *Store
	ctx        context.Context
	key, token string
	id         string
	hash       hash.Hash
	size       int64
	parts      []types.CompletedPart
	done       bool
}

func (u *upload) create(meta store.EpisodeMeta) error {
	s := u.s
	out, err := s.client.CreateMultipartUpload(u.ctx, &s3.CreateMultipartUploadInput{
		Bucket: &s.cfg.Bucket, Key: &u.key, Metadata: objectMeta(meta, u.token),
		ContentType: aws.String("application/octet-stream"),
	})
	s.observe(u.ctx, opCreate, err)
	if err != nil {
		return unavailable(u.ctx, opCreate, u.key, err)
	}
	u.id = aws.ToString(out.UploadId)
	s.inflight.add(u.id)
	return nil
}

// abortUnlessDone aborts the upload unless it completed: with a context of its own,
// since the request's may be what ended it. An abort that fails leaves the upload to
// SweepStale.
func (u *upload) abortUnlessDone() {
	s := u.s
	defer s.inflight.remove(u.id)
	if u.done {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(u.ctx), s.opts.StallTimeout)
	defer cancel()
	if err := s.abort(ctx, u.key, u.id); err != nil {
		s.log.Warn().Err(err).Str("key", u.key).Msg("could not abort a multipart upload; the hourly sweep aborts it once it is older than an hour")
	}
}

// abort aborts a multipart upload until ListParts no longer finds it: a part whose
// request the store is still finishing (its body cut by the client) may outlive one
// abort, as S3's own documentation warns.
func (s *Store) abort(ctx context.Context, key, id string) error {
	wait := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &s.cfg.Bucket, Key: &key, UploadId: &id})
		if codeOf(err) == "NoSuchUpload" {
			err = nil
		}
		s.observe(ctx, opAbort, err)
		if err != nil {
			return unavailable(ctx, opAbort, key, err)
		}
		_, err = s.client.ListParts(ctx, &s3.ListPartsInput{Bucket: &s.cfg.Bucket, Key: &key, UploadId: &id, MaxParts: aws.Int32(1)})
		if codeOf(err) == "NoSuchUpload" || statusOf(err) == http.StatusNotFound {
			s.observe(ctx, opList, nil)
			return nil
		}
		s.observe(ctx, opList, err)
		if err != nil {
			return unavailable(ctx, opList, key, err)
		}
		if attempt == 5 {
			return fmt.Errorf("%w: abort %s: the upload is still listed after %d aborts", store.ErrUnavailable, key, attempt)
		}
		select {
		case <-time.After(wait):
			wait *= 2
		case <-ctx.Done():
			return unavailable(ctx, opAbort, key, ctx.Err())
		}
	}
}

// send uploads body as parts. declared is its length, < 0 when unknown.
func (u *upload) send(body io.Reader, maxBytes, declared int64) error {
	hashed := io.TeeReader(body, u.hash)
	for n := int32(1); ; n++ {
		if declared >= 0 {
			left := declared - u.size
			if left == 0 {
				return u.checkEnd(hashed)
			}
			length := min(u.s.partSize, left)
			if err := u.part(n, io.LimitReader(hashed, length), length, u.ctx.Done()); err != nil {
				return err
			}
			continue
		}
		more, err := u.bufferedPart(n, hashed, maxBytes)
		if err != nil || !more {
			return err
		}
	}
}

// checkEnd makes sure a body of known length has nothing past it (net/http's bodies
// never do; a caller's reader might).
func (u *upload) checkEnd(body io.Reader) error {
	var one [1]byte
	n, err := io.ReadFull(body, one[:])
	if n > 0 {
		return fmt.Errorf("%w: the body is longer than the %d bytes it declared", store.ErrTooLarge, u.size)
	}
	if err != nil && err != io.EOF {
		return err
	}
	return nil
}

// bufferedPart reads up to a part of a body of unknown length into a shared buffer
// and sends it; more is false once the body has ended.
func (u *upload) bufferedPart(n int32, body io.Reader, maxBytes int64) (more bool, err error) {
	s := u.s
	var buf []byte
	select {
	case buf = <-s.buffers:
	case <-u.ctx.Done():
		return false, u.ctx.Err()
	}
	defer func() { s.buffers <- buf }()
	if buf == nil {
		buf = make([]byte, s.partSize)
	}
	got, rerr := io.ReadFull(body, buf)
	if rerr == io.ErrUnexpectedEOF {
		rerr = io.EOF // a short last part
	}
	if rerr != nil && rerr != io.EOF {
		return false, rerr
	}
	if u.size+int64(got) > maxBytes {
		return false, fmt.Errorf("%w: more than %d bytes", store.ErrTooLarge, maxBytes)
	}
	if got == 0 {
		return false, nil
	}
	// The part is all in buf: nothing to pad, so it is sent as read even if ctx ends
	// meanwhile (the request's context ends once its whole body is read, see finish).
	if err := u.part(n, bytes.NewReader(buf[:got]), int64(got), nil); err != nil {
		return false, err
	}
	if rerr == io.EOF {
		return false, nil
	}
	// A body exactly at maxBytes must not be refused for the limit check above to
	// fire one part late: the next read says whether more comes.
	return true, nil
}

// part sends one part of length bytes from r. It is sent once (r cannot be read
// twice), under a watchdog that cuts it when the store stops taking bytes or
// answering for the stall timeout. A failure of r (the client gone, its body cut) is
// returned as r's error, not the store's.
//
// When r fails or the upload's context ends mid-part, the part is still sent whole,
// padded with zeros, and answered before part returns: a request cut short would
// leave the store finishing it on its own time, and a part it wrote after the abort
// would bring the aborted upload back (S3 warns of this; versitygw does it). The
// padded part is never completed: the upload is aborted.
func (u *upload) part(n int32, r io.Reader, length int64, cut <-chan struct{}) error {
	s := u.s
	pr := &partReader{r: r, left: length, cut: cut}
	pr.touch()
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(u.ctx))
	defer cancel(nil)
	stop := s.watch(ctx, cancel, pr)
	out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
		Bucket: &s.cfg.Bucket, Key: &u.key, UploadId: &u.id, PartNumber: aws.Int32(n),
		Body: pr, ContentLength: aws.Int64(length),
	}, sendOnce)
	stop()
	if rerr := pr.seal(); rerr != nil {
		return rerr // the client's, not the store's: no observe
	}
	if cerr := u.ctx.Err(); cerr != nil && pr.wasPadded() {
		return fmt.Errorf("upload part %d of %s: %w", n, u.key, cerr)
	}
	if err != nil && errors.Is(context.Cause(ctx), errStalled) {
		err = fmt.Errorf("%w: %w", errStalled, err)
	}
	s.observe(ctx, opUploadPart, err)
	if err != nil {
		return unavailable(u.ctx, opUploadPart, u.key, err)
	}
	u.parts = append(u.parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(n)})
	u.size += length
	return nil
}

// complete completes the upload, conditionally where the server honours it. created
// is false when another upload's object is there: the server refused ours (412), or
// (a retry of a completion that the server had done) the object is not ours.
func (u *upload) complete() (created bool, err error) {
	s := u.s
	ifNoneMatch := s.ifNoneMatch()
	// Assembling the parts takes the server time in proportion to the size.
	ctx, cancel := context.WithTimeout(u.ctx, s.opts.StallTimeout+time.Duration(u.size/(4<<20))*time.Second)
	defer cancel()
	for attempt := 1; ; attempt++ {
		_, err = s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
			Bucket: &s.cfg.Bucket, Key: &u.key, UploadId: &u.id,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: u.parts}, IfNoneMatch: ifNoneMatch,
		})
		// 409: a conflicting conditional write in progress; AWS asks for a retry.
		if statusOf(err) != http.StatusConflict || attempt == 3 {
			break
		}
		select {
		case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
		case <-ctx.Done():
		}
	}
	switch {
	case err == nil:
		s.observe(ctx, opComplete, nil)
		u.done = true
		return true, nil
	case isPreconditionFailed(err), codeOf(err) == "NoSuchUpload":
		s.observe(ctx, opComplete, nil)
		// Ours if the SDK's retry of a completion that went through was refused.
		h, ok, herr := s.head(u.ctx, u.key)
		if herr != nil {
			return false, herr
		}
		if ok && h.upload == u.token {
			u.done = true
			return true, nil
		}
		return false, nil
	}
	s.observe(ctx, opComplete, err)
	return false, unavailable(u.ctx, opComplete, u.key, err)
}

// putWhole streams a body of known length as one PutObject that the store verifies
// against sha (see PutEpisode). A body that fails or a ctx that ends cuts the request:
// a PutObject cut short stores nothing (unlike a part, it has nothing to abort).
func (u *upload) putWhole(host, sha string, body io.Reader, meta store.EpisodeMeta) (store.PutResult, error) {
	s := u.s
	raw, _ := hex.DecodeString(sha) // validated
	pr := &partReader{r: io.TeeReader(body, u.hash), left: meta.Size, passErrors: true}
	pr.touch()
	ctx, cancel := context.WithCancelCause(u.ctx)
	defer cancel(nil)
	stop := s.watch(ctx, cancel, pr)
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &s.cfg.Bucket, Key: &u.key, Body: pr, ContentLength: aws.Int64(meta.Size),
		Metadata: objectMeta(meta, u.token), IfNoneMatch: s.ifNoneMatch(), ContentType: aws.String("application/octet-stream"),
		ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(raw)),
	}, sendOnce)
	stop()
	if rerr := pr.seal(); rerr != nil {
		return store.PutResult{}, rerr
	}
	if cerr := u.ctx.Err(); cerr != nil {
		return store.PutResult{}, fmt.Errorf("put %s: %w", u.key, cerr)
	}
	got := hex.EncodeToString(u.hash.Sum(nil))
	switch {
	case err == nil:
		s.observe(ctx, opPut, nil)
		if got != sha { // a store that did not check after all: take it back
			u.deleteOurs()
			return store.PutResult{}, &store.DigestMismatchError{Declared: sha, Got: got}
		}
	case isPreconditionFailed(err):
		s.observe(ctx, opPut, nil)
		return s.duplicate(u.ctx, host, sha, meta)
	case isBadDigest(err):
		s.observe(ctx, opPut, nil)
		if got != sha {
			return store.PutResult{}, &store.DigestMismatchError{Declared: sha, Got: got}
		}
		err = fmt.Errorf("the store received other bytes than were sent (%w)", err)
		s.observe(ctx, opPut, err)
		return store.PutResult{}, unavailable(u.ctx, opPut, u.key, err)
	case statusOf(err) == 0 && !errors.Is(context.Cause(ctx), errStalled):
		// No answer read: a store refusing a duplicate (412) as soon as it has the
		// headers may hang up before the body is sent, and the write's error is then
		// all net/http reports. The object, if there, says who won.
		h, ok, herr := s.head(u.ctx, u.key)
		switch {
		case herr == nil && ok && h.upload == u.token:
			s.observe(ctx, opPut, nil)
		case herr == nil && ok:
			s.observe(ctx, opPut, nil)
			return s.duplicate(u.ctx, host, sha, meta)
		default:
			s.observe(ctx, opPut, err)
			return store.PutResult{}, unavailable(u.ctx, opPut, u.key, err)
		}
	default:
		if errors.Is(context.Cause(ctx), errStalled) {
			err = fmt.Errorf("%w: %w", errStalled, err)
		}
		s.observe(ctx, opPut, err)
		return store.PutResult{}, unavailable(u.ctx, opPut, u.key, err)
	}
	u.size = meta.Size
	if err := s.putSidecar(u.ctx, host, sha, meta); err != nil {
		return store.PutResult{}, fmt.Errorf("store episode %s metadata: %w", meta.Episode, err)
	}
	return store.PutResult{SHA256: sha, Size: meta.Size, Created: true, ReceivedAt: meta.ReceivedAt, Episode: meta.Episode}, nil
}

// deleteOurs deletes the object if this upload wrote it.
func (u *upload) deleteOurs() {
	s := u.s
	ctx, cancel := context.WithTimeout(context.WithoutCancel(u.ctx), s.opts.StallTimeout)
	defer cancel()
	if h, ok, err := s.head(ctx, u.key); err != nil || !ok || h.upload != u.token {
		return
	}
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.cfg.Bucket, Key: &u.key})
	s.observe(ctx, opDelete, err)
	if err != nil {
		s.log.Error().Err(err).Str("key", u.key).Msg("could not delete an object whose bytes do not match its SHA-256: delete it by hand")
	}
}

// sendOnce sends a request whose body streams from the client: it cannot be sent
// again, and is hashed by us (and checked by the store), so it goes unsigned.
func sendOnce(o *s3.Options) {
	o.RetryMaxAttempts = 1
	o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
}

func isBadDigest(err error) bool {
	switch codeOf(err) {
	case "BadDigest", "XAmzContentChecksumMismatch", "InvalidDigest":
		return true
	}
	return false
}

// putEmpty stores an empty episode with one conditional PutObject: S3 has no empty
// multipart upload. Its digest is checked before.
func (u *upload) putEmpty(host, sha string, body io.Reader, meta store.EpisodeMeta) (store.PutResult, error) {
	s := u.s
	if err := u.checkEnd(io.TeeReader(body, u.hash)); err != nil {
		return store.PutResult{}, err
	}
	if got := hex.EncodeToString(u.hash.Sum(nil)); got != sha {
		return store.PutResult{}, &store.DigestMismatchError{Declared: sha, Got: got}
	}
	_, err := s.client.PutObject(u.ctx, &s3.PutObjectInput{
		Bucket: &s.cfg.Bucket, Key: &u.key, Body: bytes.NewReader(nil), ContentLength: aws.Int64(0),
		Metadata: objectMeta(meta, u.token), IfNoneMatch: s.ifNoneMatch(), ContentType: aws.String("application/octet-stream"),
	})
	if isPreconditionFailed(err) {
		s.observe(u.ctx, opPut, nil)
		return s.duplicate(u.ctx, host, sha, meta)
	}
	s.observe(u.ctx, opPut, err)
	if err != nil {
		return store.PutResult{}, unavailable(u.ctx, opPut, u.key, err)
	}
	meta.Size = 0
	if err := s.putSidecar(u.ctx, host, sha, meta); err != nil {
		return store.PutResult{}, fmt.Errorf("store episode %s metadata: %w", meta.Episode, err)
	}
	return store.PutResult{SHA256: sha, Size: 0, Created: true, ReceivedAt: meta.ReceivedAt, Episode: meta.Episode}, nil
}

// partReader is a part's body as the SDK reads it. It keeps the body's own error
// apart from the store's, pads the part with zeros once the body failed or cut is
// closed (see part), notes when the store last took bytes (the watchdog), and is
// sealed once UploadPart returns: net/http may still be reading a request body after
// the response came (a store answering early), and the next part must not race it.
type partReader struct {
	mu     sync.Mutex
	r      io.Reader
	left   int64
	cut    <-chan struct{}
	err    error // the body's error, if it failed
	sealed bool
	padded bool // some of the part is zeros, not the body's bytes
	// passErrors hands the body's error to the request, which is then cut, instead
	// of padding (putWhole).
	passErrors bool

	reading atomic.Bool
	last    atomic.Int64 // unix nanoseconds of the latest read's end
}

var errSealed = errors.New("part already sent")

func (p *partReader) touch() { p.last.Store(time.Now().UnixNano()) }

func (p *partReader) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sealed {
		return 0, errSealed
	}
	if p.left <= 0 {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), p.left)]
	if p.err != nil && p.passErrors {
		return 0, p.err
	}
	if p.err != nil || p.cutOff() {
		p.padded = true
		clear(b)
		p.left -= int64(len(b))
		p.touch()
		return len(b), nil
	}
	p.reading.Store(true)
	n, err := p.r.Read(b)
	p.reading.Store(false)
	p.touch()
	p.left -= int64(n)
	if err == io.EOF && p.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	if err != nil && err != io.EOF {
		p.err = err
		if p.passErrors {
			return n, err
		}
	}
	return n, nil
}

func (p *partReader) cutOff() bool {
	select {
	case <-p.cut:
		return true
	default:
		return false
	}
}

// wasPadded reports whether any of the part was zeros rather than the body.
func (p *partReader) wasPadded() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.padded
}

// seal stops all further reads and returns the body's error, if any.
func (p *partReader) seal() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sealed = true
	return p.err
}

// watch cancels ctx with errStalled when the store has taken no byte of pr and not
// answered for the stall timeout. Time spent waiting for the client's bytes does not
// count: that is the receiver's own stall timeout on the client's connection.
func (s *Store) watch(ctx context.Context, cancel context.CancelCauseFunc, pr *partReader) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(min(s.opts.StallTimeout/4, time.Second))
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
				if pr.reading.Load() {
					pr.touch()
					continue
				}
				if time.Since(time.Unix(0, pr.last.Load())) > s.opts.StallTimeout {
					cancel(errStalled)
					return
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
