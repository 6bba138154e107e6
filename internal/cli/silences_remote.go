package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/rs/zerolog"

	"github.com/cis490/cis490/internal/client"
	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/silences"
)

// remoteSilence makes the silence with POST /v1/silences. The receiver checks it as
// a local silence is checked (and measures --for by its own clock).
func remoteSilence(ctx context.Context, cfg config.Config, log zerolog.Logger, r silences.Request) (silences.Silence, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return silences.Silence{}, err
	}
	var s silences.Silence
	err = callSilences(ctx, cfg, log, client.Request{
		Method: http.MethodPost, Path: "/v1/silences",
		Header: http.Header{"Content-Type": {"application/json"}},
		Body: func() (io.ReadCloser, int64, error) {
			return io.NopCloser(bytes.NewReader(body)), int64(len(body)), nil
		},
	}, http.StatusCreated, &s)
	return s, err
}

func remoteSilences(ctx context.Context, cfg config.Config, log zerolog.Logger) ([]silences.View, error) {
	var views []silences.View
	err := callSilences(ctx, cfg, log, client.Request{Method: http.MethodGet, Path: "/v1/silences"}, http.StatusOK, &views)
	return views, err
}

func remoteUnsilence(ctx context.Context, cfg config.Config, log zerolog.Logger, id string) error {
	return callSilences(ctx, cfg, log, client.Request{Method: http.MethodDelete, Path: "/v1/silences/" + url.PathEscape(id)},
		http.StatusNoContent, nil)
}

// callSilences makes one call through the one transport; any answer but want is an
// *client.APIError (isStatus tells which), and a body is decoded into out.
func callSilences(ctx context.Context, cfg config.Config, log zerolog.Logger, r client.Request, want int, out any) error {
	c, err := client.New(cfg, client.Options{Logger: log})
	if err != nil {
		return err
	}
	res, err := c.Do(ctx, r)
	if err != nil {
		return err
	}
	if res.StatusCode != want {
		return c.StatusError(res)
	}
	defer res.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 64<<20)).Decode(out); err != nil {
		return fmt.Errorf("%s answered %d with a body that is not what it should be (%v): is it a cis490 receiver of this version?",
			c.URL()+r.Path, res.StatusCode, err)
	}
	return nil
}

// isStatus reports whether err is the receiver's answer with this status.
func isStatus(err error, status int) bool {
	var apiErr *client.APIError
	return errors.As(err, &apiErr) && apiErr.Status == status
}
