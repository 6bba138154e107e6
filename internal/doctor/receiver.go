package doctor

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/cis490/cis490/internal/client"
	"github.com/cis490/cis490/internal/protocol"
)

// Thresholds of the receiver checks.
const (
	// certWarnBefore is how early an expiring certificate is flagged: two weeks leaves
	// time to issue a new one even if the maintainer is away for a week.
	certWarnBefore = 14 * 24 * time.Hour
	skewWarn       = time.Minute
	// skewFail is where certificate validity checks start to misfire and the
	// receiver's timeline of this host (index, alerts) stops matching its logs.
	skewFail = 5 * time.Minute
)

const journalHint = "the receiver runs but is unwell: read `journalctl -u cis490-receiver` on the receiver"

const wrongSchemeSkip = "not checked: the receiver speaks HTTPS but receiver.url says http:// (see receiver-reachable)"

func (p *probe) reachable(context.Context) Check {
	url := p.cfg.Receiver.URL
	details := map[string]any{"url": url}
	var clear *client.CleartextError
	if errors.As(p.err, &clear) {
		details["suggested_url"] = clear.Use
		return failed(clear.Summary(),
			fmt.Sprintf("set receiver.url = %q in %s, and serve TLS on the receiver ([serve.tls] cert_file and key_file; receiver.ca_file names the CA that signed its certificate)",
				clear.Use, configName(p.cfg.File)), details)
	}
	if p.err != nil {
		return failed("cannot set up the connection to the receiver: "+p.err.Error(),
			"fix the receiver.* setting named above in "+configName(p.cfg.File), details)
	}
	a := p.healthz()
	switch alert := tlsAlert(a.err); {
	case alert != nil:
		// The transport's message for this ends in "check receiver.url and the
		// network", which sends people the wrong way: the receiver answered, with a no.
		return failed(fmt.Sprintf("%s refused the TLS handshake (%v)", url, alert), unreachableHint(a.err), details)
	case a.err != nil:
		return failed(a.err.Error(), unreachableHint(a.err), details)
	}
	details["latency_ms"], details["tls_version"] = millis(a.latency), "none"
	over := "over plain HTTP"
	if a.tls != nil {
		details["tls_version"] = tls.VersionName(a.tls.Version)
		over = "over " + tls.VersionName(a.tls.Version)
	}
	if a.plainToTLS() {
		fixed := httpsURL(url)
		details["suggested_url"] = fixed
		return failed(fmt.Sprintf("%s speaks HTTPS, not plain HTTP: it answered %d %q", url, a.status, a.apiErr.Message),
			wrongSchemeHint(configName(p.cfg.File), fixed, p.cfg.Receiver.CAFile), details)
	}
	if a.status != http.StatusOK {
		msg := http.StatusText(a.status)
		if a.apiErr != nil {
			msg = a.apiErr.Message
		}
		return failed(fmt.Sprintf("GET /healthz answered %d: %s", a.status, msg), journalHint, details)
	}
	summary := fmt.Sprintf("%s answered in %s %s", url, a.latency.Round(time.Millisecond), over)
	if a.tls == nil && !isLoopbackURL(url) {
		return warned(summary+": the token crosses the network in clear text",
			"serve TLS on the receiver ([serve.tls] cert_file and key_file) and set receiver.url to https://… in lab-host.toml", details)
	}
	if a.tls != nil && len(a.tls.PeerCertificates) > 0 {
		expires := a.tls.PeerCertificates[0].NotAfter
		details["server_cert_expires"] = expires.UTC()
		if expires.Sub(p.now()) < certWarnBefore {
			return warned(summary+"; its certificate expires on "+day(expires),
				"renew the receiver's certificate (serve.tls.cert_file on the receiver) before "+day(expires), details)
		}
	}
	return ok(summary, details)
}

// clientCert is checkClientCert with the receiver's verdict on the certificate: the
// alert of the handshake of receiver-reachable's request, else whoami's answer when
// it says a certificate is required (/healthz takes none, SPEC §3.1). One that looks
// right here but that the receiver refuses is no ✓.
func (p *probe) clientCert(context.Context) Check {
	var verdict func() error
	if u, err := url.Parse(p.cfg.Receiver.URL); err == nil && u.Scheme == "https" {
		verdict = func() error {
			if alert := tlsAlert(p.healthz().err); alert != nil {
				return alert
			}
			if certRequired(p.whoami()) {
				return errCertRequired
			}
			return nil
		}
	}
	return checkClientCert(p.cfg, p.now(), verdict)
}

// certRequired says whether the receiver refused the request for want of a client
// certificate, before it looked at the token.
func certRequired(a answer) bool {
	return a.apiErr != nil && a.status == http.StatusUnauthorized && a.apiErr.Code == protocol.CodeClientCertRequired
}

func wrongSchemeHint(file, fixed, caFile string) string {
	hint := fmt.Sprintf("set receiver.url = %q in %s", fixed, file)
	if caFile == "" {
		hint += ", and receiver.ca_file to the CA that signed the receiver's certificate (serve.tls.cert_file on the receiver)"
	} else {
		hint += "; receiver.ca_file (" + caFile + ") must hold the CA that signed the receiver's certificate"
	}
	return hint + ". This host's token went out unencrypted: unless the receiver is on this machine, mint a new one (`cis490 token new --host`) and delete the old [[token]] entry of this host from the receiver's tokens file"
}

func unreachableHint(err error) string {
	switch {
	case tlsAlert(err) != nil:
		return "the receiver refused this host's TLS handshake: it wants a client certificate signed by the fleet CA and naming this host; " +
			"check receiver.cert_file and key_file (see client-cert)"
	case untrustedServer(err):
		return "receiver.ca_file must hold the CA that signed the receiver's certificate (serve.tls.cert_file on the receiver)"
	}
	return "check that the receiver runs (`systemctl status cis490-receiver` on it) and that receiver.url in lab-host.toml points at it"
}

func (p *probe) token(context.Context) Check {
	if p.unreachable() {
		return skipped("not checked: the receiver cannot be reached (see receiver-reachable)")
	}
	if p.wrongScheme() {
		return skipped(wrongSchemeSkip)
	}
	a := p.whoami()
	details := map[string]any{"token_file": p.cfg.Receiver.TokenFile}
	if a.err != nil {
		return failed("GET /v1/whoami: "+a.err.Error(), unreachableHint(a.err), details)
	}
	if a.apiErr != nil {
		details["status"] = a.status
		if certRequired(a) {
			details["code"] = a.apiErr.Code
			return failed("the receiver did not look at the token: it requires a client certificate first, and this host sent none (see client-cert)",
				"set receiver.cert_file and receiver.key_file in "+configName(p.cfg.File)+" to a certificate signed by the fleet CA with CN "+p.cfg.Host+" and its key", details)
		}
		switch a.status {
		case http.StatusUnauthorized:
			return failed("the receiver refused the token: "+a.apiErr.Message, a.apiErr.Hint, details)
		case http.StatusForbidden:
			return failed("the receiver refused this host: "+a.apiErr.Message, a.apiErr.Hint, details)
		}
		return failed(fmt.Sprintf("GET /v1/whoami answered %d: %s", a.status, a.apiErr.Message), journalHint, details)
	}
	var w protocol.WhoAmI
	if err := json.Unmarshal(a.body, &w); err != nil {
		return failed("the answer to GET /v1/whoami is not JSON: is receiver.url a cis490 receiver?",
			"point receiver.url in lab-host.toml at the receiver (https://pi.example:8490)", details)
	}
	details["role"], details["receiver_host"] = w.Role, w.Host
	mint := "`cis490 token new --host " + p.cfg.Host + "` on the receiver, into receiver.token_file"
	switch {
	case w.Role == "open":
		return ok("the receiver is in open mode: it takes no token and believes "+protocol.HeaderHost, details)
	case w.Role == "admin":
		return warned("receiver.token_file holds an admin token: a lab host should carry only its own host token",
			"mint a host token with "+mint, details)
	case w.Host != p.cfg.Host:
		return failed(fmt.Sprintf("the receiver knows this token as host %s, not %s", w.Host, p.cfg.Host),
			"mint a token for "+p.cfg.Host+" with "+mint+", or fix host in lab-host.toml", details)
	}
	return ok("the receiver accepts the token for "+w.Host, details)
}

func (p *probe) commitAllowed(context.Context) Check {
	w, skip := p.identity()
	if skip != nil {
		return *skip
	}
	commit := p.c.Commit()
	details := map[string]any{"commit": commit, "gate": w.Gate, "receiver_version": w.Version}
	release := "install a release build of cis490 on this host (it carries its commit)"
	switch {
	case commit == "" && !w.CommitAllowed:
		return failed("this build carries no commit stamp and the receiver refuses unstamped builds", release, details)
	case commit == "":
		return warned("this build carries no commit stamp: the receiver lets it through for now (serve.gate.unstamped = allow)", release, details)
	case !w.CommitAllowed:
		return failed(fmt.Sprintf("the receiver's version gate refuses commit %s: uploads from this host are turned away", commit),
			"update cis490 on this host to a build the receiver allows (serve.gate.allowlist_file or git_ref on the receiver lists them)", details)
	}
	return ok(fmt.Sprintf("commit %s is allowed%s", short(commit), gateNote(w.Gate)), details)
}

// gateNote explains the gate's reasons for letting a commit through when it is not
// that the allow-list names it.
func gateNote(reason string) string {
	switch reason {
	case "open":
		return " (the receiver's gate is open: it has no allow-list)"
	case "no-list-yet":
		return " (the receiver has not loaded its allow-list yet)"
	}
	return ""
}

// clockSkew compares the receiver's Date header with this host's clock. Any answer
// will do, even a 401: a refused token says nothing about the clock.
func (p *probe) clockSkew(context.Context) Check {
	if p.unreachable() {
		return skipped("not checked: the receiver cannot be reached (see receiver-reachable)")
	}
	if p.wrongScheme() {
		return skipped(wrongSchemeSkip)
	}
	a := p.whoami()
	if a.err != nil {
		a = p.healthz()
	}
	date, err := http.ParseTime(a.header.Get("Date"))
	if err != nil {
		return skipped("not checked: the receiver sent no usable Date header")
	}
	// Date has whole seconds, so the receiver's time lies somewhere in the second
	// after it; it was stamped about halfway through the round trip.
	local := a.sent.Add(a.latency / 2)
	skew := date.Add(500 * time.Millisecond).Sub(local)
	details := map[string]any{"skew_seconds": skew.Round(time.Second).Seconds(), "receiver_date": date.UTC(), "local_time": local.UTC()}
	summary := "this host's clock is " + describeSkew(skew) + " the receiver's"
	hint := "turn on time synchronisation on this host (`timedatectl set-ntp true`; check chronyd or systemd-timesyncd). " +
		"If this host is right, the receiver's clock is wrong"
	switch abs := max(skew, -skew); {
	case abs > skewFail:
		return failed(summary, hint, details)
	case abs > skewWarn:
		return warned(summary, hint, details)
	}
	return ok(summary, details)
}

func describeSkew(skew time.Duration) string {
	r := skew.Round(time.Second)
	switch {
	case r > -2*time.Second && r < 2*time.Second: // Date has whole seconds: finer is noise
		return "within a second of"
	case r > 0:
		return r.String() + " behind"
	}
	return (-r).String() + " ahead of"
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}

func day(t time.Time) string { return t.UTC().Format(time.DateOnly) }

func configName(file string) string {
	if file == "" {
		return "lab-host.toml"
	}
	return file
}
