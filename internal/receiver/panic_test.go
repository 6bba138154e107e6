package receiver

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/testutil"
)

// A handler's panic is a log line about its request like any other: it carries the
// request's id, so it can be matched with the access line and the client's
// X-Request-Id.
func TestAPanicIsLoggedWithItsRequestID(t *testing.T) {
	t.Parallel()
	logs := &testutil.SyncBuffer{}
	s := &Server{log: zerolog.New(logs)}
	ts := httptest.NewServer(s.withRequestLogs(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("the handler's bug")
	})))
	defer ts.Close()
	res, err := ts.Client().Get(ts.URL + "/v1/whoami")
	if err == nil {
		res.Body.Close()
	}
	var panicked, access map[string]any
	require.Eventually(t, func() bool {
		for _, l := range strings.Split(logs.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) != nil {
				continue
			}
			switch m["message"] {
			case "request panicked":
				panicked = m
			case "request":
				access = m
			}
		}
		return panicked != nil && access != nil
	}, 5*time.Second, 5*time.Millisecond, "logs:\n%s", logs.String())
	assert.Equal(t, "error", panicked["level"])
	assert.Equal(t, "the handler's bug", panicked["panic"])
	assert.Contains(t, panicked["stack"], "panic_test.go")
	assert.NotEmpty(t, panicked["req_id"])
	assert.Equal(t, access["req_id"], panicked["req_id"])
	assert.Equal(t, "/v1/whoami", panicked["path"])
}
