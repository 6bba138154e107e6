package fleethealth

import (
	"fmt"
	"strings"
	"time"

	"github.com/cis490/cis490/internal/config"
)

// Finding is one symptom a host shows as of the evaluation time.
type Finding struct {
	Symptom string `json:"symptom"`
	// Since is the threshold time: when the symptom's definition first became true.
	Since    time.Time      `json:"since"`
	Summary  string         `json:"summary"`
	Evidence map[string]any `json:"evidence"`
	Severity string         `json:"severity"`
	// Silence is the silence that holds this symptom's notifications back, if any.
	Silence *SilenceRef `json:"silence,omitempty"`
	// repeat, when set, spaces this symptom's repeats instead of repeat_interval.
	repeat time.Duration
}

// SilenceRef names a silence (alerts silence) that matches a symptom now.
type SilenceRef struct {
	ID     string    `json:"id"`
	Until  time.Time `json:"until"`
	Reason string    `json:"reason"`
}

// evaluate lists the symptoms of a host active within the window, as of now (SPEC
// §5.1). Each fires once its threshold time has passed. firstSeen is when fleet health
// first saw the host active (the state file remembers it beyond the window).
func evaluate(f *hostFacts, rep *Report, firstSeen, now time.Time, cfg config.FleetHealth) []Finding {
	var out []Finding
	for _, fn := range []func() *Finding{
		func() *Finding { return silent(f, now, cfg) },
		func() *Finding { return fatalOnly(f, now, cfg) },
		func() *Finding { return tlsRefused(f) },
		func() *Finding { return unstamped(f, now, cfg) },
		func() *Finding { return reportFailing(f.host, rep, now) },
		func() *Finding { return reportWarning(f.host, rep, now) },
		func() *Finding { return reportStale(f.host, rep, firstSeen, now, cfg) },
	} {
		if found := fn(); found != nil {
			out = append(out, *found)
		}
	}
	return out
}

// silent: a request within the window (the host is tracked), none within silent_after.
func silent(f *hostFacts, now time.Time, cfg config.FleetHealth) *Finding {
	quiet := now.Sub(f.lastSeen)
	if quiet < cfg.SilentAfter {
		return nil
	}
	return &Finding{
		Symptom: Silent,
		Since:   f.lastSeen.Add(cfg.SilentAfter),
		Summary: fmt.Sprintf("%s has sent nothing for %s (last: %s answered %d at %s); check that it is up, that cis490-ship.timer runs on it and that it reaches the receiver",
			f.host, human(quiet), f.lastRoute, f.lastStatus, stamp(f.lastSeen)),
		Evidence: map[string]any{
			"last_seen": f.lastSeen, "last_route": f.lastRoute, "last_status": f.lastStatus,
			"quiet_for": human(quiet), "silent_after": human(cfg.SilentAfter),
		},
	}
}

// quietSilent is silent for a roster host without a request in the window: quiet
// since lastSeen (the state remembers it beyond the window) or, for one never seen,
// expected since its token was created (expected).
func quietSilent(host string, lastSeen, expected, now time.Time, cfg config.FleetHealth) *Finding {
	from, ev := lastSeen, map[string]any{"last_seen": nil, "silent_after": human(cfg.SilentAfter)}
	var summary string
	if !lastSeen.IsZero() {
		ev["last_seen"] = lastSeen
		summary = fmt.Sprintf("%s has sent nothing for %s (last request at %s); check that it is up, that cis490-ship.timer runs on it and that it reaches the receiver, or revoke its token (`cis490 token revoke --host %s`) if it is gone for good",
			host, human(now.Sub(lastSeen)), stamp(lastSeen), host)
	} else {
		from = expected
		ev["expected_since"] = expected
		summary = fmt.Sprintf("%s has a host token but has never sent a request (expected since %s); install cis490 on it with that token (`cis490 install lab-host`), or revoke the token (`cis490 token revoke --host %s`)",
			host, stamp(expected), host)
	}
	since := from.Add(cfg.SilentAfter)
	if since.After(now) {
		return nil
	}
	ev["quiet_for"] = human(now.Sub(from))
	ev["gone"] = now.Sub(from) > cfg.ActiveWindow
	return &Finding{Symptom: Silent, Since: since, Summary: summary, Evidence: ev}
}

// fatalOnly: since the last 2xx gated request, at least fatal_min_requests gated
// requests, all 4xx, the latest within fatal_window. It fires at the n-th refusal.
func fatalOnly(f *hostFacts, now time.Time, cfg config.FleetHealth) *Finding {
	refs := f.refusals // after lastOK, sorted
	if len(refs) < cfg.FatalMinRequests {
		return nil
	}
	latest := refs[len(refs)-1]
	if now.Sub(latest.at) > cfg.FatalWindow {
		return nil // it stopped trying: silent takes over
	}
	statuses := map[string]int{}
	for _, r := range refs {
		statuses[fmt.Sprint(r.status)]++
	}
	lastOK := "with no success in the active window"
	var lastOKAt any // null in the evidence when there is none
	if !f.lastOK.IsZero() {
		lastOK, lastOKAt = "since its last success at "+stamp(f.lastOK), f.lastOK
	}
	why := latest.err
	if why == "" {
		why = "no reason recorded"
	}
	return &Finding{
		Symptom: FatalOnly,
		Since:   refs[cfg.FatalMinRequests-1].at,
		Summary: fmt.Sprintf("%s has been refused %d times in a row %s; latest: %s answered %d at %s: %s",
			f.host, len(refs), lastOK, latest.route, latest.status, stamp(latest.at), why),
		Evidence: map[string]any{
			"refused": len(refs), "statuses": statuses, "last_ok": lastOKAt, "first_refused": refs[0].at,
			"latest_at": latest.at, "latest_route": latest.route, "latest_status": latest.status,
			"latest_commit": latest.commit, "latest_error": latest.err,
		},
	}
}

// tlsRefused: handshakes refused for a certificate naming the host since the last
// request of its that got through (the handshake then worked). It clears only at the
// host's next such request (heldTLS keeps it open once its lines leave the window).
func tlsRefused(f *hostFacts) *Finding {
	hs := f.handshakes // after lastSeen, sorted
	if len(hs) == 0 {
		return nil
	}
	latest := hs[len(hs)-1]
	reasons := map[string]int{}
	for _, h := range hs {
		reasons[h.reason]++
	}
	var lastOK any
	if !f.lastSeen.IsZero() {
		lastOK = f.lastSeen
	}
	return &Finding{
		Symptom: TLSRefused,
		Since:   hs[0].at,
		Summary: fmt.Sprintf("%s's TLS handshake is refused (%s; %d since %s, latest from %s at %s): %s",
			f.host, orNone(latest.reason), len(hs), stamp(hs[0].at), latest.remote, stamp(latest.at), tlsFix(latest.reason)),
		Evidence: map[string]any{
			"refused": len(hs), "reasons": reasons, "first_refused": hs[0].at, "latest_at": latest.at,
			"latest_reason": latest.reason, "latest_remote": latest.remote, "last_ok": lastOK,
		},
	}
}

// tlsFix says what fixes a refused handshake, by the reason the receiver recorded.
func tlsFix(reason string) string {
	switch reason {
	case "unknown_ca":
		return "its certificate is from another CA: issue one from the lab CA (`cis490 cert renew` on it, or by hand)"
	case "expired":
		return "its certificate has expired: renew it (`cis490 cert renew` on it; cis490-cert-fetch.timer does it on its own)"
	case "revoked":
		return "its certificate was revoked: renew it (`cis490 cert renew` on it)"
	case "bad_usage":
		return "its certificate is not for clients: it needs extendedKeyUsage clientAuth (`cis490 cert renew` on it issues one)"
	case "no_certificate":
		return "it presented no client certificate: configure receiver.cert_file and receiver.key_file on it (`cis490 cert renew` writes them)"
	}
	return "run `cis490 doctor` on it, and see the receiver's log (journalctl -u cis490-receiver)"
}

func orNone(s string) string {
	if s == "" {
		return "no reason recorded"
	}
	return s
}

// unstamped: the latest gated request, within fatal_window, carried no commit. It
// fires at the first unstamped request after the last stamped one.
func unstamped(f *hostFacts, now time.Time, cfg config.FleetHealth) *Finding {
	if f.lastGated.IsZero() || f.lastGatedStamped || now.Sub(f.lastGated) > cfg.FatalWindow || len(f.unstamped) == 0 {
		return nil
	}
	var lastStamped any
	if !f.lastStamped.IsZero() {
		lastStamped = f.lastStamped
	}
	return &Finding{
		Symptom: Unstamped,
		Since:   f.unstamped[0],
		Summary: fmt.Sprintf("%s sends requests without X-Cis490-Code-Commit since %s (latest: %s at %s): it runs a build without a commit stamp; install a release build of cis490 on it",
			f.host, stamp(f.unstamped[0]), f.lastGatedRoute, stamp(f.lastGated)),
		Evidence: map[string]any{
			"first_unstamped": f.unstamped[0], "unstamped_requests": len(f.unstamped),
			"latest_at": f.lastGated, "latest_route": f.lastGatedRoute, "last_stamped": lastStamped,
		},
	}
}

// reportFailing: the latest doctor report says "fail". A report received after now
// (an evaluation of the past) did not exist then: it says nothing.
func reportFailing(host string, rep *Report, now time.Time) *Finding {
	if rep == nil || rep.Status != "fail" || rep.ReceivedAt.After(now) {
		return nil
	}
	ids := make([]string, 0, len(rep.Failing))
	for _, c := range rep.Failing {
		ids = append(ids, c.ID)
	}
	failing := strings.Join(ids, ", ")
	if failing == "" {
		failing = "no check named"
	}
	return &Finding{
		Symptom: ReportFailing,
		Since:   rep.ReceivedAt,
		Summary: fmt.Sprintf("%s's doctor report of %s fails (%s); run `cis490 doctor` on it for the fixes",
			host, stamp(rep.ReceivedAt), failing),
		Evidence: map[string]any{"received_at": rep.ReceivedAt, "generated_at": rep.GeneratedAt, "failing": rep.Failing},
	}
}

// reportWarning: the latest doctor report says "warn". The summary names the first
// warning check; the evidence lists them all.
func reportWarning(host string, rep *Report, now time.Time) *Finding {
	if rep == nil || rep.Status != "warn" || rep.ReceivedAt.After(now) {
		return nil
	}
	first := "no check named"
	if len(rep.Warnings) > 0 {
		w := rep.Warnings[0]
		first = w.ID
		if w.Summary != "" {
			first += ": " + w.Summary
		}
		if n := len(rep.Warnings) - 1; n > 0 {
			first += fmt.Sprintf(" (and %d more)", n)
		}
	}
	warnings := rep.Warnings
	if warnings == nil {
		warnings = []FailedCheck{}
	}
	return &Finding{
		Symptom: ReportWarning,
		Since:   rep.ReceivedAt,
		Summary: fmt.Sprintf("%s's doctor report of %s warns: %s; run `cis490 doctor` on it for the fixes",
			host, stamp(rep.ReceivedAt), first),
		Evidence: map[string]any{"received_at": rep.ReceivedAt, "generated_at": rep.GeneratedAt, "warnings": warnings},
	}
}

// reportStale: active, but no doctor report for report_stale_after. A host that never
// sent one is stale report_stale_after after fleet health first saw it.
func reportStale(host string, rep *Report, firstSeen, now time.Time, cfg config.FleetHealth) *Finding {
	if rep != nil && rep.ReceivedAt.After(now) {
		return nil
	}
	ev := map[string]any{"report_stale_after": human(cfg.ReportStaleAfter), "first_seen": firstSeen, "last_report": nil}
	var since time.Time
	var summary string
	if rep == nil {
		since = firstSeen.Add(cfg.ReportStaleAfter)
		summary = fmt.Sprintf("%s has never sent a doctor report (active since %s); enable cis490-doctor-check.timer on it (`cis490 install lab-host`)",
			host, stamp(firstSeen))
	} else {
		since = rep.ReceivedAt.Add(cfg.ReportStaleAfter)
		ev["last_report"] = rep.ReceivedAt
		ev["report_age"] = human(now.Sub(rep.ReceivedAt))
		summary = fmt.Sprintf("%s has sent no doctor report for %s (last one received %s); check cis490-doctor-check.timer on it",
			host, human(now.Sub(rep.ReceivedAt)), stamp(rep.ReceivedAt))
	}
	if since.After(now) {
		return nil
	}
	return &Finding{Symptom: ReportStale, Since: since, Summary: summary, Evidence: ev}
}

// human prints a duration the way an operator says it: 45m, 2h05m, 3d4h.
func human(d time.Duration) string {
	d = d.Round(time.Minute)
	h, m := int(d.Hours()), int(d.Minutes())%60
	switch {
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour && m == 0:
		return fmt.Sprintf("%dh", h)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", h, m)
	default:
		return fmt.Sprintf("%dd%dh", h/24, h%24)
	}
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04Z") }
