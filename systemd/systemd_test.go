package systemd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEveryUnitFileIsEmbedded(t *testing.T) {
	t.Parallel()
	var onDisk []string
	for _, pattern := range []string{"*.service", "*.timer"} {
		m, err := filepath.Glob(pattern)
		require.NoError(t, err)
		onDisk = append(onDisk, m...)
	}
	assert.ElementsMatch(t, onDisk, Names())
	for _, name := range Names() {
		embedded, err := Unit(name)
		require.NoError(t, err)
		disk, err := os.ReadFile(name)
		require.NoError(t, err)
		assert.Equal(t, string(disk), string(embedded), name)
	}
}

// The baseline SPEC §6 asks of every service; systemd-analyze (in internal/e2e)
// checks the rest.
func TestServicesAreHardened(t *testing.T) {
	t.Parallel()
	for _, name := range Names() {
		b, err := Unit(name)
		require.NoError(t, err)
		unit := string(b)
		if strings.HasSuffix(name, ".timer") {
			assert.Contains(t, Names(), strings.TrimSuffix(name, ".timer")+".service", "%s starts a service of its name", name)
			assert.Contains(t, unit, "\nWantedBy=timers.target\n", name)
			continue
		}
		assert.Contains(t, unit, "\nExecStart="+BinaryPath+" ", name)
		for _, line := range []string{"ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes", "ProtectHome=yes", "CapabilityBoundingSet="} {
			assert.Contains(t, unit, "\n"+line, "%s lacks %s", name, line)
		}
		assert.True(t, strings.Contains(unit, "\nStateDirectory=cis490\n") || strings.Contains(unit, "\nReadWritePaths=-/var/spool/cis490\n") ||
			strings.Contains(unit, "\nReadWritePaths=-/etc/cis490\n"),
			"%s declares what it writes", name)
	}
}
