package doctor

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/release/releasetest"
	"github.com/cis490/cis490/internal/update"
)

func TestUpdateCheck(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	key := releasetest.NewKey(t).Public
	for name, tc := range map[string]struct {
		keys  string
		state *update.State
		want  Status
		says  string
	}{
		"no key: autoupdate off": {want: Warn, says: "autoupdate is off"},
		"never ran":              {keys: key, want: OK, says: "no update has run yet"},
		"updated": {keys: key, state: &update.State{LastAttempt: now.Add(-time.Hour), Result: update.ResultUpdated, CommitAfter: releasetest.Commit("b"), AppliedSeq: 5},
			want: OK, says: "updated: commit bbbbbbbbbbbb, release seq 5"},
		"rolled back": {keys: key, state: &update.State{LastAttempt: now, Result: update.ResultRolledBack, Reason: "doctor failed token after the switch"},
			want: Warn, says: "rolled back: doctor failed token"},
		"refused for the platform": {keys: key, state: &update.State{LastAttempt: now, Result: update.ResultRefused, Reason: "no binary for linux/arm/v6"},
			want: Warn, says: "refused: no binary"},
		"a bad signature": {keys: key, state: &update.State{LastAttempt: now, Result: update.ResultRefused, Refused: update.RefusedSignature, Reason: "not signed"},
			want: Fail, says: "does not trust"},
		"failed": {keys: key, state: &update.State{LastAttempt: now, Result: update.ResultFailed, Reason: "connection refused"},
			want: Warn, says: "failed: connection refused"},
		"interrupted": {keys: key, state: &update.State{LastAttempt: now, Result: update.ResultUpdated, Pending: &update.Pending{Phase: "switching", From: "a", To: "b"}},
			want: Warn, says: "interrupted"},
		"stale": {keys: key, state: &update.State{LastAttempt: now.Add(-72 * time.Hour), Result: update.ResultUpToDate},
			want: Warn, says: "no update attempt for 72h"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Update.PublicKeys = tc.keys
			cfg.Update.StateDir = t.TempDir()
			if tc.state != nil {
				data, err := json.Marshal(tc.state)
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(filepath.Join(cfg.Update.StateDir, update.StateFile), data, 0o644))
			}
			c := checkUpdate(cfg, now)
			assert.Equal(t, tc.want, c.Status, c.Summary)
			assert.Contains(t, c.Summary, tc.says)
			if c.Status != OK {
				assert.NotEmpty(t, c.Hint)
			}
		})
	}
}
