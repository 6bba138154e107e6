package logging

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAutoIsJSONWhenNotATerminal(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, "info", FormatAuto)
	require.NoError(t, err)
	log.Info().Str("k", "v").Msg("hello")
	log.Debug().Msg("hidden below info")
	var line map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &line), buf.String())
	assert.Equal(t, "hello", line["message"])
	assert.Equal(t, "info", line["level"])
	assert.Equal(t, 1, bytes.Count(buf.Bytes(), []byte("\n")))
}

func TestConsoleIsHuman(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, "debug", FormatConsole)
	require.NoError(t, err)
	log.Debug().Msg("hello")
	assert.Contains(t, buf.String(), "hello")
	assert.False(t, json.Valid(bytes.TrimSpace(buf.Bytes())))
}

func TestBadLevelAndFormat(t *testing.T) {
	_, err := New(&bytes.Buffer{}, "loud", FormatAuto)
	assert.ErrorContains(t, err, "loud")
	_, err = New(&bytes.Buffer{}, "info", "xml")
	assert.ErrorContains(t, err, "xml")
}
