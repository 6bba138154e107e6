package cli

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/doctor"
)

// piConfig writes a receiver's lab-host.toml: [serve] keys only, its listener an
// address nothing listens on, its data folder created.
func piConfig(t *testing.T, extra string) (cfg, data string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	dir := t.TempDir()
	data = filepath.Join(dir, "data")
	require.NoError(t, os.MkdirAll(filepath.Join(data, "tmp"), 0o750))
	cfg = filepath.Join(dir, "lab-host.toml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(
		"host = \"pi\"\n%s[serve]\nlisten = %q\ndata_dir = %q\n[doctor]\ntimeout = \"5s\"\n", extra, addr, data)), 0o600))
	return cfg, data
}

func reportIDs(t *testing.T, out string) []string {
	t.Helper()
	var r doctor.Report
	require.NoError(t, json.Unmarshal([]byte(out), &r), out)
	ids := make([]string, len(r.Checks))
	for i, c := range r.Checks {
		ids[i] = c.ID
	}
	return ids
}

func TestDoctorRole(t *testing.T) {
	t.Parallel()
	pi, _ := piConfig(t, "")
	both, _ := piConfig(t, "[receiver]\nurl = \"https://pi.lab:8490\"\n")
	for _, tc := range []struct {
		name, cfg, role string
		receiver        bool
	}{
		{"the Pi, auto", pi, "", true},
		{"the Pi as a lab host", pi, "lab-host", false},
		{"both sections, auto", both, "auto", false},
		{"both sections as the receiver", both, "receiver", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := []string{"--config", tc.cfg, "doctor", "--json"}
			if tc.role != "" {
				args = append(args, "--role", tc.role)
			}
			code, out, errOut := runDoctorMain(t, args...)
			assert.Equal(t, ExitFailure, code, errOut)
			ids := reportIDs(t, out)
			assert.Equal(t, tc.receiver, slices.Contains(ids, "receiver-healthz"), "%v", ids)
			assert.Equal(t, !tc.receiver, slices.Contains(ids, "receiver-reachable"), "%v", ids)
		})
	}
	code, _, errOut := runDoctorMain(t, "--config", pi, "doctor", "--role", "pi")
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, errOut, "use auto, lab-host or receiver")
}

// On the Pi, health ship files the report in the data folder itself: no receiver
// needs to answer, no token is needed.
func TestHealthShipOnThePiStoresTheReport(t *testing.T) {
	t.Parallel()
	cfg, data := piConfig(t, "")
	code, _, errOut := runDoctorMain(t, "--config", cfg, "health", "ship")
	require.Equal(t, ExitOK, code, errOut)
	raw, err := os.ReadFile(filepath.Join(data, "host-health", "pi.json"))
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(raw, &got))
	assert.Equal(t, "pi", got["host"])
	assert.Equal(t, "fail", got["status"], "its receiver is not running")
	assert.NotEmpty(t, got["received_at"])
	ids := reportIDs(t, string(raw))
	assert.Contains(t, ids, "receiver-healthz")
}
