package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/doctor"
)

func runDoctorMain(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, Streams{In: bytes.NewReader(nil), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

// unreachableLabConfig writes a lab-host.toml whose receiver is an address nothing listens on.
func unreachableLabConfig(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	dir := t.TempDir()
	cfg := filepath.Join(dir, "lab-host.toml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(
		"host = \"lab-07\"\n[receiver]\nurl = \"http://%s\"\n[ship]\nspool_dir = %q\n[doctor]\ntimeout = \"5s\"\n",
		addr, filepath.Join(dir, "spool"))), 0o600))
	return cfg
}

func TestDoctorExitCodes(t *testing.T) {
	t.Parallel()
	cfg := unreachableLabConfig(t)
	code, out, errOut := runDoctorMain(t, "--config", cfg, "doctor", "--json")
	assert.Equal(t, ExitFailure, code, "a check failed")
	var report doctor.Report
	require.NoError(t, json.Unmarshal([]byte(out), &report), out)
	assert.Equal(t, "lab-07", report.Host)
	assert.Contains(t, errOut, "not ok: receiver-reachable, spool")

	code, out, errOut = runDoctorMain(t, "--config", filepath.Join(t.TempDir(), "missing.toml"), "doctor")
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, out, "✗ config", "the report is printed even so")
	assert.Contains(t, errOut, "missing.toml")

	code, _, errOut = runDoctorMain(t, "doctor", "extra-argument")
	assert.Equal(t, ExitUsage, code, errOut)
}
