package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"github.com/cis490/cis490/internal/alerts"
	"github.com/cis490/cis490/internal/client"
	"github.com/cis490/cis490/internal/config"
)

// tailRemote reads GET /v1/alerts; with -f it reconnects whenever the stream ends (the
// receiver restarted), asking for what came since a little before the newest line
// printed and skipping the lines printed already. alerts.jsonl is in the order lines
// were written, not sorted by ts (a --now in the past, a clock stepped back), so no
// line is ever skipped for its ts alone.
func tailRemote(ctx context.Context, opts *alertsTailOptions, cfg config.Config, log zerolog.Logger, p *alertPrinter) error {
	retries := -1 // the configuration's
	if opts.follow {
		retries = 0 // a stream is not retried blindly: it resumes from its last line
	}
	c, err := client.New(cfg, client.Options{Retries: retries, Logger: log})
	if err != nil {
		return err
	}
	q := url.Values{}
	q.Set("n", strconv.Itoa(opts.n))
	if !opts.filter.Since.IsZero() {
		q.Set("since", opts.filter.Since.UTC().Format(time.RFC3339Nano))
	}
	for k, v := range map[string]string{"host": opts.filter.Host, "symptom": opts.filter.Symptom, "status": opts.filter.Status} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if opts.follow {
		q.Set("follow", "1")
	}
	printed := alerts.NewPrinted()
	wait := time.Second
	for {
		connected, err := streamAlerts(ctx, c, q, func(l alerts.Line) error {
			if !opts.filter.Match(l.Alert) || !printed.Add(l) {
				return nil
			}
			return p.print(l)
		})
		printed.FirstDone()
		if ctx.Err() != nil {
			return nil
		}
		var apiErr *client.APIError
		if !opts.follow || errors.As(err, &apiErr) {
			return err
		}
		if err == nil {
			err = errors.New("the receiver closed the stream")
		}
		if connected {
			wait = time.Second
		}
		log.Warn().Err(err).Str("retry_in", wait.Round(time.Millisecond).String()).Msg("the alerts stream ended (receiver restarting?); reconnecting")
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
		if since, ok := printed.ResumeFrom(); ok {
			q.Set("since", since.UTC().Format(time.RFC3339Nano))
			q.Del("n")
		}
	}
}

// streamAlerts makes one GET /v1/alerts and hands each line to fn; connected says
// whether the receiver answered 200.
func streamAlerts(ctx context.Context, c *client.Client, q url.Values, fn func(alerts.Line) error) (bool, error) {
	res, err := c.Do(ctx, client.Request{Method: http.MethodGet, Path: "/v1/alerts?" + q.Encode(), NoRetry: q.Has("follow")})
	if err != nil {
		return false, err
	}
	if res.StatusCode != http.StatusOK {
		return false, c.StatusError(res)
	}
	defer res.Body.Close()
	br := bufio.NewReaderSize(res.Body, 64<<10)
	for {
		raw, err := br.ReadBytes('\n')
		if a, ok := alerts.Parse(raw); ok && bytes.HasSuffix(raw, []byte{'\n'}) {
			if ferr := fn(alerts.Line{Raw: bytes.TrimRight(raw, "\r\n"), Alert: a}); ferr != nil {
				return true, ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return true, nil
		}
		if err != nil {
			return true, err
		}
	}
}
