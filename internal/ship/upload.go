package ship

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/cis490/cis490/internal/client"
	"github.com/cis490/cis490/internal/protocol"
)

// errChanged: the file's content changed after it was hashed, so neither the rest of
// a cut upload nor the whole file would match the SHA-256 declared for it.
var errChanged = errors.New("the file changed while it was being sent")

// upload is one file's way to the receiver, attempt by attempt: after a cut it asks
// the receiver how much it kept and sends only the rest (SPEC §3.3, §4.2).
type upload struct {
	r   *shipper
	h   hashed
	log zerolog.Logger
	// base is how many bytes of the run's earlier files the progress bar counts.
	base int64

	cut      bool  // the last attempt sent part of the body and got no final answer
	from     int64 // where the next PUT starts
	declared bool  // the next PUT says so with Upload-Offset (the receiver named from)
	kept     int64 // the most the receiver said it holds
	resumed  int   // PUTs that started past 0
}

// send uploads the file and returns the receiver's final answer: the PUT's, or a
// HEAD's 200 when the episode turned out to be stored already.
func (u *upload) send(ctx context.Context) (*http.Response, error) {
	return u.r.opts.Client.Retry(ctx, "/v1/episodes", false, u.attempt)
}

func (u *upload) attempt(ctx context.Context, a *client.Attempt) (*http.Response, error) {
	if a.N > 1 && u.cut && u.r.resume {
		if res, err := u.ask(ctx, a); res != nil || err != nil {
			return res, err
		}
	}
	// Checked before every attempt: a producer that rewrote the file in place must
	// not get its new bytes sent after the old ones, nor under the old SHA-256.
	if err := u.unchanged(); err != nil {
		return nil, client.Permanent(err)
	}
	var sent atomic.Int64 // body bytes the transport read: sent, or about to be
	res, err := u.put(ctx, &sent)
	u.cut = sent.Load() > 0 && (err != nil || res.StatusCode >= 500)
	if err == nil && res.StatusCode == http.StatusConflict {
		return nil, u.conflict(a, res)
	}
	return res, err
}

// ask is HEAD /v1/episodes/{sha256}: how much of this episode the receiver holds. It
// sets where the next PUT starts, or returns the answer that ends the upload (200:
// stored already) or this attempt (no answer, 429, 5xx, a refusal).
func (u *upload) ask(ctx context.Context, a *client.Attempt) (*http.Response, error) {
	res, err := u.r.opts.Client.Send(ctx, client.Request{Method: http.MethodHead, Path: "/v1/episodes/" + u.h.sha})
	if err != nil {
		return nil, err
	}
	switch res.StatusCode {
	case http.StatusOK:
		u.log.Info().Msg("the receiver has this episode already (stored by an earlier attempt or another run)")
		return res, nil
	case http.StatusNoContent:
		res.Body.Close()
		off, ok := u.offset(res)
		if !ok {
			u.log.Warn().Str("upload_offset", res.Header.Get(protocol.HeaderUploadOffset)).Msg("the receiver's Upload-Offset is not within the file; sending it whole again")
			u.from, u.declared = 0, false
			return nil, nil
		}
		u.from, u.declared = off, true
		u.moved(a, off)
		return nil, nil
	case http.StatusNotFound, http.StatusBadRequest:
		res.Body.Close()
		u.log.Info().Int("status", res.StatusCode).Msg("the receiver kept nothing of the cut upload; sending it whole again")
		u.from, u.declared = 0, false
		return nil, nil
	case http.StatusMethodNotAllowed, http.StatusNotImplemented:
		res.Body.Close()
		u.log.Info().Int("status", res.StatusCode).Msg("the receiver does not resume uploads (an older version); sending the file whole again")
		u.r.resume = false // for the rest of the run: an old receiver stays old
		u.from, u.declared = 0, false
		return nil, nil
	}
	return res, nil // 429 and 5xx are retried; a refusal (401, 403, 426, 428) ends the run
}

// conflict is a 409 to a resumed PUT: the receiver's partial is elsewhere, or another
// upload of it is in flight. The next attempt, after the usual backoff, starts where
// the receiver says; with no partial left, it asks again first.
func (u *upload) conflict(a *client.Attempt, res *http.Response) error {
	defer res.Body.Close()
	off, ok := u.offset(res)
	if ok && off > 0 {
		u.from, u.declared = off, true
		u.moved(a, off)
		u.cut = false // the offset is known: no HEAD needed
	} else {
		// No partial to continue: it may have been stored meanwhile, which a HEAD
		// tells before the whole file is sent again.
		u.from, u.declared = 0, false
		u.cut = true
	}
	return fmt.Errorf("the receiver holds a different part of this upload (409, Upload-Offset %q): continuing from byte %d",
		res.Header.Get(protocol.HeaderUploadOffset), u.from)
}

// moved records that the receiver holds off bytes; more than it said before is
// progress, which keeps the retries from running out on a link that keeps dropping.
func (u *upload) moved(a *client.Attempt, off int64) {
	if off > u.kept {
		u.kept = off
		a.Progressed()
	}
}

func (u *upload) offset(res *http.Response) (int64, bool) {
	off, err := protocol.ParseUploadOffset(res.Header.Get(protocol.HeaderUploadOffset))
	return off, err == nil && off <= u.h.file.Size
}

func (u *upload) put(ctx context.Context, sent *atomic.Int64) (*http.Response, error) {
	size := u.h.file.Size
	header := http.Header{protocol.HeaderEpisode: {u.h.file.Name}, protocol.HeaderSHA256: {u.h.sha}}
	from := u.from
	if u.declared {
		header.Set(protocol.HeaderUploadOffset, strconv.FormatInt(from, 10))
	}
	if from > 0 {
		u.resumed++
		u.log.Info().Int64("offset", from).Msg(fmt.Sprintf("resumed at %d of %d bytes", from, size))
	}
	return u.r.opts.Client.Send(ctx, client.Request{
		Method: http.MethodPut,
		Path:   "/v1/episodes",
		Header: header,
		Body: func() (io.ReadCloser, int64, error) {
			// From the file opened once: every attempt sends the bytes that were
			// hashed, whatever a producer does to the name meanwhile.
			rd := &countingReader{r: io.NewSectionReader(u.h.fd, from, size-from), n: sent}
			if p := u.r.opts.Progress; p != nil {
				rd.progress = func(n int64) { p.Set(u.base + from + n) }
				p.Set(u.base + from)
			}
			return rd, size - from, nil
		},
	})
}

// unchanged checks that the open file is still what was hashed: same size,
// modification and change times. A rename over the name does not matter (the open
// file is sent); a write into it does.
func (u *upload) unchanged() error {
	now, err := u.h.fd.Stat()
	if err != nil {
		return err
	}
	was := u.h.file.Info
	if now.Size() != was.Size() || !now.ModTime().Equal(was.ModTime()) || !ctime(now).Equal(ctime(was)) {
		return errChanged
	}
	return nil
}

func ctime(fi os.FileInfo) time.Time {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return time.Unix(st.Ctim.Unix())
	}
	return time.Time{}
}

// countingReader counts what the transport reads of a body and moves the progress bar;
// once the transport closes it, a late read of a finished attempt moves nothing.
type countingReader struct {
	r        io.Reader
	n        *atomic.Int64
	progress func(n int64)
	closed   atomic.Bool
}

func (c *countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	n := c.n.Add(int64(k))
	if c.progress != nil && !c.closed.Load() {
		c.progress(n)
	}
	return k, err
}

func (c *countingReader) Close() error {
	c.closed.Store(true)
	return nil
}
