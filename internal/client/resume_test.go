package client_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/client"
	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/gate"
	"github.com/cis490/cis490/internal/index"
	"github.com/cis490/cis490/internal/protocol"
	"github.com/cis490/cis490/internal/receiver"
	"github.com/cis490/cis490/internal/store"
)

// What a resumed upload needs of the transport, against the real receiver
// (in-process, open mode): a body cut by the client partway is an error, not an
// answer; HEAD /v1/episodes/{sha256} then says where the receiver's partial ends;
// a PUT of the rest with Upload-Offset completes the episode, checked whole.
func TestTransportResumesACutUploadOnTheRealReceiver(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "data")
	log := zerolog.New(zerolog.NewTestWriter(t))
	sc := config.Default().Serve
	sc.DataDir, sc.MinFreeBytes = data, 0
	st, err := store.Open(data, store.Options{Logger: log})
	require.NoError(t, err)
	ix, err := index.OpenWriter(filepath.Join(data, "index"))
	require.NoError(t, err)
	defer ix.Close()
	srv := httptest.NewServer(receiver.New(receiver.Options{Config: sc, Store: st, Index: ix, Gate: gate.New(nil, gate.Options{Logger: log}), Logger: log}).Handler())
	defer srv.Close()
	cfg := config.Default()
	cfg.Host, cfg.Receiver.URL, cfg.Ship.Retries = "lab-07", srv.URL, 0
	c, err := client.New(cfg, client.Options{Retries: -1, Logger: log})
	require.NoError(t, err)

	body := make([]byte, 5<<20+12345)
	_, err = rand.Read(body)
	require.NoError(t, err)
	sum := sha256.Sum256(body)
	sha := hex.EncodeToString(sum[:])
	header := func() http.Header {
		return http.Header{protocol.HeaderEpisode: {"ep-1.tar"}, protocol.HeaderSHA256: {sha}}
	}
	ctx := context.Background()

	errCut := errors.New("the link went away")
	_, err = c.Send(ctx, client.Request{Method: http.MethodPut, Path: "/v1/episodes", Header: header(),
		Body: func() (io.ReadCloser, int64, error) {
			return io.NopCloser(io.MultiReader(bytes.NewReader(body[:3<<20+100]), failing{errCut})), int64(len(body)), nil
		}})
	require.ErrorIs(t, err, errCut, "a cut body is an error, whatever the receiver makes of it")

	// Asked once the receiver has dealt with the cut PUT: a HEAD before would take
	// the upload over (SPEC §3.3) and it would keep only what it had read by then.
	require.Eventually(t, func() bool {
		cut := false
		now := time.Now()
		_, err := index.Read(filepath.Join(data, "index"), now.Add(-time.Hour), now.Add(time.Hour), func(e index.Entry) error {
			cut = cut || e.Method == http.MethodPut && e.Status == http.StatusBadRequest
			return nil
		})
		return err == nil && cut
	}, 10*time.Second, 10*time.Millisecond, "the receiver indexes the cut PUT")
	res, err := c.Send(ctx, client.Request{Method: http.MethodHead, Path: "/v1/episodes/" + sha})
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusNoContent, res.StatusCode)
	offset, err := strconv.ParseInt(res.Header.Get(protocol.HeaderUploadOffset), 10, 64)
	require.NoError(t, err)
	assert.Equal(t, int64(3<<20), offset, "kept up to its last whole checkpoint")

	h := header()
	h.Set(protocol.HeaderUploadOffset, strconv.FormatInt(offset, 10))
	res, err = c.Send(ctx, client.Request{Method: http.MethodPut, Path: "/v1/episodes", Header: h,
		Body: func() (io.ReadCloser, int64, error) {
			return io.NopCloser(bytes.NewReader(body[offset:])), int64(len(body)) - offset, nil
		}})
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusCreated, res.StatusCode)
	stored, err := os.ReadFile(filepath.Join(data, "episodes", "lab-07", sha))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(body, stored))

	res, err = c.Send(ctx, client.Request{Method: http.MethodHead, Path: "/v1/episodes/" + sha})
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode, "stored now")
	assert.Equal(t, strconv.Itoa(len(body)), res.Header.Get("Content-Length"))
}

type failing struct{ err error }

func (f failing) Read([]byte) (int, error) { return 0, f.err }
