package ship

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A stand-in for systemctl on PATH: systemd itself is proven in .ci/systemd-test;
// here only the words and arguments ship uses.
func fakeSystemctl(t *testing.T, exit int) string {
	t.Helper()
	dir := t.TempDir()
	log := filepath.Join(dir, "args")
	script := "#!/bin/sh\necho \"$@\" >>" + log + "\necho 'Unit cis490-autoupdate.service not found.' >&2\nexit " + map[int]string{0: "0", 5: "5"}[exit] + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "systemctl"), []byte(script), 0o755))
	t.Setenv("PATH", dir)
	return log
}

func TestAutoupdateIsStartedWithoutWaitingUnderSystemd(t *testing.T) {
	log := fakeSystemctl(t, 0)
	t.Setenv("INVOCATION_ID", "0123456789abcdef")
	msg, err := StartAutoupdate(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "started cis490-autoupdate.service to move to the allowed release", msg)
	args, err := os.ReadFile(log)
	require.NoError(t, err)
	assert.Equal(t, "start --no-block cis490-autoupdate.service\n", string(args))
}

func TestAutoupdateNotInstalledSaysWhatToDo(t *testing.T) {
	fakeSystemctl(t, 5)
	t.Setenv("INVOCATION_ID", "0123456789abcdef")
	_, err := StartAutoupdate(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Unit cis490-autoupdate.service not found.")
	assert.Contains(t, err.Error(), "cis490 update")
}

func TestAutoupdateOutsideSystemdIsAHint(t *testing.T) {
	log := fakeSystemctl(t, 0)
	t.Setenv("INVOCATION_ID", "")
	msg, err := StartAutoupdate(context.Background())
	require.NoError(t, err)
	assert.Contains(t, msg, "run `cis490 update`")
	assert.NoFileExists(t, log, "systemctl is not asked outside systemd")
}
