package receiver_test

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/index"
	"github.com/cis490/cis490/internal/protocol"
)

// assertAPIError checks an error answer of SPEC §3.3: the status, and a JSON body with
// the machine code and a human sentence.
func assertAPIError(t *testing.T, r resp, status int, code string) {
	t.Helper()
	assert.Equal(t, status, r.status, "body: %s", r.body)
	assert.True(t, strings.HasPrefix(r.header.Get("Content-Type"), "application/json"),
		"Content-Type %q", r.header.Get("Content-Type"))
	assert.Equal(t, code, r.json["code"], "body: %s", r.body)
	msg, _ := r.json["error"].(string)
	assert.NotEmpty(t, msg, "an error says what is wrong; body: %s", r.body)
}

// tryDo is h.do without require: safe inside Eventually, whose condition runs on another
// goroutine, and for requests that are expected to fail before any answer.
func tryDo(h *harness, r req) (resp, error) {
	httpReq, err := http.NewRequest(r.method, h.ts.URL+r.path, r.body)
	if err != nil {
		return resp{}, err
	}
	if r.host != "" {
		httpReq.Header.Set(protocol.HeaderHost, r.host)
	}
	if r.token != "" {
		httpReq.Header.Set("Authorization", "Bearer "+r.token)
	}
	if r.commit != "" {
		httpReq.Header.Set(protocol.HeaderCommit, r.commit)
	}
	for k, v := range r.header {
		httpReq.Header.Set(k, v)
	}
	c := r.client
	if c == nil {
		c = h.client
	}
	res, err := c.Do(httpReq)
	if err != nil {
		return resp{}, err
	}
	defer res.Body.Close()
	out := resp{status: res.StatusCode, header: res.Header}
	if out.body, err = io.ReadAll(res.Body); err != nil {
		return out, err
	}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		_ = json.Unmarshal(out.body, &out.json)
	}
	return out, nil
}

// waitForToken waits until the receiver's token store has reloaded the tokens file and
// knows tok (it checks the file about once a second). Tokens minted together are loaded
// together, so waiting for the last one is enough.
func waitForToken(t *testing.T, h *harness, client *http.Client, tok string) {
	t.Helper()
	require.Eventually(t, func() bool {
		r, err := tryDo(h, req{method: http.MethodGet, path: "/v1/whoami", token: tok, client: client})
		return err == nil && r.status != http.StatusUnauthorized
	}, 10*time.Second, 50*time.Millisecond, "the receiver never loaded the new token")
}

// readIndex is h.indexLines without require, for Eventually.
func readIndex(h *harness) ([]index.Entry, error) {
	var out []index.Entry
	now := time.Now()
	_, err := index.Read(filepath.Join(h.data, "index"), now.Add(-48*time.Hour), now.Add(time.Hour), func(e index.Entry) error {
		out = append(out, e)
		return nil
	})
	return out, err
}

// waitIndexLen waits until the index holds n lines and returns them.
// waitIndexLine returns the index line of the request with this id once it is written.
func waitIndexLine(t *testing.T, h *harness, id string) index.Entry {
	t.Helper()
	var line index.Entry
	require.Eventually(t, func() bool {
		for _, e := range h.indexLines() {
			if e.ID == id {
				line = e
				return true
			}
		}
		return false
	}, 5*time.Second, 20*time.Millisecond, "no index line for request %s", id)
	return line
}

func waitIndexLen(t *testing.T, h *harness, n int) []index.Entry {
	t.Helper()
	require.Eventually(t, func() bool {
		lines, err := readIndex(h)
		return err == nil && len(lines) >= n
	}, 5*time.Second, 10*time.Millisecond, "the index never reached %d lines", n)
	return h.indexLines()
}

func jsonBody(s string) io.Reader { return strings.NewReader(s) }
