package ca

import (
	"fmt"
	"time"
)

// Refused is a request for a certificate the CA turns down (403): why, and the
// command that opens the way.
type Refused struct{ Reason, Fix string }

func (e *Refused) Error() string { return e.Reason + ": " + e.Fix }

// bootstrapRefusal says why host may not get a certificate with its token alone
// under policy at now, or nil when it may. In order:
//   - `cert allow-bootstrap` opens it once, whatever the policy: until a certificate
//     is issued to the host after it, by bootstrap or by renewal (a key that turned up
//     again must not leave the way open for months);
//   - a `cert revoke` of the host's certificates closes it, whatever the policy,
//     until the next allow-bootstrap: otherwise the revoked host's timer would
//     fetch a new certificate with the same token within hours;
//   - never: closed; always: open; when-none-valid: open while the host has no
//     certificate on record that is unexpired and unrevoked.
func (l Ledger) bootstrapRefusal(host, policy string, now time.Time) *Refused {
	allowAt := l.lastAllowance(host)
	if !allowAt.IsZero() && allowAt.After(l.lastIssued(host)) {
		return nil
	}
	open := fmt.Sprintf("`cis490 cert allow-bootstrap %s` on the receiver lets it bootstrap once", host)
	if at := l.lastRevokedByMaintainer(host); !at.IsZero() && at.After(allowAt) {
		return &Refused{
			Reason: fmt.Sprintf("%s's certificates were revoked on the receiver (cert revoke, %s), which closes its bootstrap", host, at.UTC().Format(time.RFC3339)),
			Fix:    "if the host is to be trusted again, " + open + " (and `cis490 token rotate --host " + host + "` if its token may have leaked)",
		}
	}
	switch policy {
	case BootstrapAlways:
		return nil
	case BootstrapNever:
		return &Refused{
			Reason: "the receiver issues no certificate on a token alone (serve.ca.bootstrap = never)",
			Fix:    open + ", or renew with a valid certificate of " + host,
		}
	}
	live := l.Live(host, now)
	if len(live) == 0 {
		return nil
	}
	newest := live[len(live)-1]
	return &Refused{
		Reason: fmt.Sprintf("%s has a valid certificate on record (serial %s, until %s), so its token alone is not enough (serve.ca.bootstrap = when-none-valid)",
			host, newest.Serial, newest.NotAfter.UTC().Format(time.RFC3339)),
		Fix: "renew with that certificate (`cis490 cert renew` on the host, receiver.cert_file and key_file naming it); if its key is lost, " + open,
	}
}

func (l Ledger) lastAllowance(host string) time.Time {
	var t time.Time
	for _, a := range l.Allowed {
		if a.Host == host && a.TS.After(t) {
			t = a.TS
		}
	}
	return t
}

// lastIssued is when host's newest client certificate was issued, either way.
func (l Ledger) lastIssued(host string) time.Time {
	var t time.Time
	for _, is := range l.Issued {
		if is.Host == host && is.By != ByServer && is.TS.After(t) {
			t = is.TS
		}
	}
	return t
}

func (l Ledger) lastRevokedByMaintainer(host string) time.Time {
	var t time.Time
	for _, r := range l.Revoked {
		if r.Host == host && r.Reason == ReasonRevoked && r.TS.After(t) {
			t = r.TS
		}
	}
	return t
}
