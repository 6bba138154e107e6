package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"
)

// Attempt is one try of a request Retry makes.
type Attempt struct {
	// N counts the tries, from 1.
	N          int
	progressed bool
}

// Progressed says this attempt found the work further on than the one before it (an
// upload the receiver kept more of): Retry then counts ship.retries and the backoff
// afresh, so a link that keeps dropping but keeps delivering is not given up on after
// a fixed number of cuts. Work that does not move forward still ends after
// ship.retries retries.
func (a *Attempt) Progressed() { a.progressed = true }

// Do sends r, retrying network errors, 429 and 5xx with exponential backoff and
// jitter. The final answer is returned whatever its status; err is set only when no
// answer came (it names the URL and what to check). The caller closes the body.
func (c *Client) Do(ctx context.Context, r Request) (*http.Response, error) {
	return c.Retry(ctx, r.Path, r.NoRetry, func(ctx context.Context, _ *Attempt) (*http.Response, error) {
		return c.Send(ctx, r)
	})
}

// Retry is Do around requests that change between attempts (a resumed upload): it
// calls attempt until an answer is final, with Do's rules. attempt returns an answer,
// or the error of a try that got none; an error wrapped by Permanent ends at once.
// path names the request in logs and errors.
func (c *Client) Retry(ctx context.Context, path string, noRetry bool, attempt func(context.Context, *Attempt) (*http.Response, error)) (*http.Response, error) {
	b := c.backoff()
	a := &Attempt{}
	failed := 0 // tries in a row that did not move the work forward
	for {
		a.N++
		a.progressed = false
		res, err := attempt(ctx, a)
		if a.progressed {
			failed = 0
			b.Reset()
		}
		failed++
		last := noRetry || failed > c.retries
		var wait time.Duration
		var why string
		switch {
		case err != nil:
			var p *permanentError
			if errors.As(err, &p) {
				return nil, c.explain(p.err, path)
			}
			if last || ctx.Err() != nil || !retryableErr(err) {
				return nil, c.explain(err, path)
			}
			wait, why = b.NextBackOff(), "request failed: "+err.Error()+"; retrying"
		case res.StatusCode == http.StatusTooManyRequests || res.StatusCode >= 500:
			if last {
				return res, nil // the answer itself, not a wait
			}
			drain(res) // superseded by the retry
			if wait = retryAfter(res.Header, time.Now()); wait > 0 {
				b.Reset() // the receiver said when: the next wait starts small again
			} else {
				wait = b.NextBackOff()
			}
			why = "receiver answered " + res.Status + "; retrying"
		default:
			return res, nil
		}
		c.log.Warn().Str("url", c.base.String()+path).Int("attempt", a.N).Str("retry_in", wait.Round(time.Millisecond).String()).Msg(why)
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return nil, c.explain(context.Cause(ctx), path)
		}
	}
}

// Permanent marks an attempt's error that a retry cannot cure: Retry returns it at once.
func Permanent(err error) error { return &permanentError{err} }

type permanentError struct{ err error }

func (p *permanentError) Error() string { return p.err.Error() }
func (p *permanentError) Unwrap() error { return p.err }

func drain(res *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
}
