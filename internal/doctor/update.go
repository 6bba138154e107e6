package doctor

import (
	"fmt"
	"time"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/update"
)

// updateStaleAfter: cis490-autoupdate.timer runs every 6 h (1 h jitter), so two days
// without an attempt means it is not running.
const updateStaleAfter = 48 * time.Hour

// checkUpdate reports the last `cis490 update` from update.state_dir/state.json
// (SPEC §4.5): a rollback, a refusal or a failure is a warning (report-warning on the
// Pi), a release whose signature did not verify a failure.
func checkUpdate(cfg config.Config, now time.Time) Check {
	dir := cfg.Update.StateDir
	keys, _ := cfg.Update.Keys() // checked when the configuration loaded
	details := map[string]any{"state_dir": dir, "public_keys": len(keys)}
	if len(keys) == 0 {
		// A warning (issue 13), so the Pi's report-warning shows a host missing one of
		// its four self-healing mechanisms.
		return warned("autoupdate is off: update.public_keys is empty, so this host never updates itself",
			"set update.public_keys in lab-host.toml to the release key (`cis490 install lab-host --update-key KEY` writes it into a new configuration; then install enables cis490-autoupdate.timer)", details)
	}
	s, err := update.ReadState(dir)
	if err != nil {
		return warned("the update state cannot be read: "+err.Error(), "move "+dir+"/"+update.StateFile+" away; the next `cis490 update` writes a new one", details)
	}
	if s.LastAttempt.IsZero() && s.Pending == nil {
		return ok("no update has run yet", details)
	}
	details["last_attempt"], details["result"], details["reason"] = s.LastAttempt, s.Result, s.Reason
	details["commit_before"], details["commit_after"] = s.CommitBefore, s.CommitAfter
	details["applied_seq"], details["target_seq"] = s.AppliedSeq, s.TargetSeq
	if s.Bad != nil {
		details["bad"] = s.Bad
	}
	hint := "run `sudo cis490 update` to see it happen, and `journalctl -u cis490-autoupdate` for the last runs"
	switch {
	case s.Pending != nil:
		details["pending"] = s.Pending
		return warned(fmt.Sprintf("an update from %s to %s was interrupted (%s)", short(s.Pending.From), short(s.Pending.To), s.Pending.Phase),
			"the next `cis490 update` finishes it; run `sudo cis490 update` now", details)
	case s.Result == update.ResultRefused && s.Refused == update.RefusedSignature:
		return failed("the receiver named a release this host does not trust: "+s.Reason,
			"check serve.update.public_keys on the receiver and update.public_keys here; a release nobody signed means someone tampered with the receiver", details)
	case s.Result == update.ResultRolledBack:
		return warned("the last update was rolled back: "+s.Reason, hint, details)
	case s.Result == update.ResultRefused, s.Result == update.ResultFailed:
		return warned("the last update "+s.Result+": "+s.Reason, hint, details)
	case now.Sub(s.LastAttempt) > updateStaleAfter:
		return warned(fmt.Sprintf("no update attempt for %s (the last, %s, ended %s)", now.Sub(s.LastAttempt).Round(time.Hour), s.LastAttempt.Format(time.RFC3339), s.Result),
			"`systemctl enable --now cis490-autoupdate.timer` (or `cis490 install lab-host --update-key KEY`)", details)
	}
	return ok(fmt.Sprintf("%s: commit %s, release seq %d (%s)", s.Result, short(s.CommitAfter), s.AppliedSeq, s.LastAttempt.Format(time.RFC3339)), details)
}
