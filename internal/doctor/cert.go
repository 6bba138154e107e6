package doctor

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/protocol"
)

// errCertRequired is the receiver's answer to a request that needs a client
// certificate and came without one: 401 client_certificate_required (SPEC §3.1). A
// receiver of an older cis490 refused the handshake instead, with the alert
// "certificate required"; sentNone takes both.
var errCertRequired = errors.New("the receiver requires a client certificate and this host sent none")

func sentNone(verdict error) bool {
	return errors.Is(verdict, errCertRequired) || verdict != nil && verdict.Error() == "tls: certificate required"
}

// checkClientCert looks at the certificate this host presents for mTLS: whether it is
// right, how long it stays right, and whether the receiver takes it. verdict, when
// not nil, returns the receiver's refusal of this host's certificate: the TLS alert it
// refused the handshake with, or errCertRequired (nil when it refused neither). It is
// asked only when the answer matters here, since it waits for the receiver.
func checkClientCert(cfg config.Config, now time.Time, verdict func() error) Check {
	rc := cfg.Receiver
	details := map[string]any{"cert_file": rc.CertFile, "key_file": rc.KeyFile}
	issue := "run `cis490 cert renew` when the receiver is the lab's CA; else issue this host a certificate signed by the fleet CA with CN " + cfg.Host +
		" and put it and its key in receiver.cert_file and key_file"
	switch {
	case rc.CertFile == "" && rc.KeyFile == "" && verdict != nil && sentNone(verdict()):
		return failed("no client certificate configured (receiver.cert_file), and the receiver requires one (serve.tls.client_ca_file)", issue, details)
	case rc.CertFile == "" && rc.KeyFile == "":
		return skipped("no client certificate configured (receiver.cert_file): fine unless the receiver requires one")
	case rc.CertFile == "" || rc.KeyFile == "":
		return failed("receiver.cert_file and receiver.key_file go together, but only one is set",
			"set both in "+configName(cfg.File), details)
	}
	certPEM, err := os.ReadFile(rc.CertFile)
	if err != nil {
		return failed("cannot read receiver.cert_file: "+err.Error(), issue, details)
	}
	keyPEM, err := os.ReadFile(rc.KeyFile)
	if err != nil {
		return failed("cannot read receiver.key_file: "+err.Error(), issue, details)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return failed("receiver.cert_file and key_file are not a certificate and its key: "+err.Error(), issue, details)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return failed("receiver.cert_file: "+err.Error(), issue, details)
		}
	}
	left := leaf.NotAfter.Sub(now)
	details["subject"], details["dns_names"], details["issuer"] = leaf.Subject.CommonName, leaf.DNSNames, leaf.Issuer.CommonName
	details["not_after"], details["days_left"] = leaf.NotAfter.UTC(), int(left.Hours()/24)

	switch {
	case !protocol.CertNamesHost(leaf, cfg.Host):
		return failed(fmt.Sprintf("the certificate is issued to %s, not to this host (%s)", certNames(leaf), cfg.Host), issue, details)
	case now.Before(leaf.NotBefore):
		return failed("the certificate is not valid before "+leaf.NotBefore.UTC().Format(time.RFC3339)+": is this host's clock right? (see clock-skew)",
			"set this host's clock (`timedatectl set-ntp true`), or "+issue, details)
	case left <= 0:
		return failed("the certificate expired on "+day(leaf.NotAfter), "renew it: "+issue, details)
	}
	if verdict != nil {
		if refusal := verdict(); refusal != nil {
			if c, ok := receiverRefused(refusal, leaf, issue, details); ok {
				return c
			}
		}
	}
	// A third of its lifetime is when cert renew renews it (twice a day, from
	// cis490-cert-fetch.timer): a certificate still under it was not renewed.
	if lifetime := leaf.NotAfter.Sub(leaf.NotBefore); left < lifetime/3 {
		return warned(fmt.Sprintf("the certificate expires in %s, on %s (under a third of its %s left)", roughly(left), day(leaf.NotAfter), roughly(lifetime)),
			"renew it before "+day(leaf.NotAfter)+": "+issue+"; if cis490-cert-fetch.timer runs, `journalctl -u cis490-cert-fetch` says why it did not", details)
	}
	return ok(fmt.Sprintf("issued to %s, valid until %s", cfg.Host, day(leaf.NotAfter)), details)
}

// receiverRefused explains the receiver's refusal of a certificate that looks right here,
// from the TLS alert it sent or errCertRequired; ok is false for an alert that is not
// about the certificate (receiver-reachable reports those).
func receiverRefused(alert error, leaf *x509.Certificate, issue string, details map[string]any) (c Check, ok bool) {
	issuer := leaf.Issuer.CommonName
	// Go's client sends a certificate only when its issuer is one the receiver names
	// in its request for one.
	sentNoneWhy := "the receiver wants a client certificate and this host sent none: it sends only one issued by a CA the receiver asks for, and this one's issuer is CN " + issuer
	if errors.Is(alert, errCertRequired) {
		details["receiver_code"] = protocol.CodeClientCertRequired
		return failed(sentNoneWhy, issue, details), true
	}
	details["receiver_alert"] = alert.Error()
	refused := "the receiver refuses this certificate at the handshake (" + strings.TrimPrefix(alert.Error(), "tls: ") + "): "
	switch alert.Error() {
	case "tls: unknown certificate authority":
		return failed(refused+"its issuer (CN "+issuer+") is not a CA the receiver trusts",
			"the CA is the one in serve.tls.client_ca_file on the receiver: "+issue, details), true
	case "tls: expired certificate":
		return failed(refused+"it has expired by the receiver's clock, though it is valid until "+day(leaf.NotAfter)+" by this host's (see clock-skew)",
			"set the wrong clock right (`timedatectl set-ntp true`), or renew it: "+issue, details), true
	case "tls: revoked certificate":
		return failed(refused+"it has been revoked", "renew it: "+issue, details), true
	case "tls: certificate required":
		return failed(sentNoneWhy, issue, details), true
	case "tls: bad certificate":
		if !forClients(leaf) {
			return failed(refused+"it is not for clients: its extendedKeyUsage lacks clientAuth",
				"issue it again with extendedKeyUsage clientAuth: "+issue, details), true
		}
		return failed(refused+"check its extendedKeyUsage (clientAuth), that it comes from the CA in serve.tls.client_ca_file, and that it is not revoked",
			"the receiver's log says why (`journalctl -u cis490-receiver` on it); then "+issue, details), true
	}
	return Check{}, false
}

// forClients says whether a certificate may be used by a TLS client: no extended key
// usage at all allows any.
func forClients(cert *x509.Certificate) bool {
	if len(cert.ExtKeyUsage) == 0 && len(cert.UnknownExtKeyUsage) == 0 {
		return true
	}
	for _, u := range cert.ExtKeyUsage {
		if u == x509.ExtKeyUsageClientAuth || u == x509.ExtKeyUsageAny {
			return true
		}
	}
	return false
}

func certNames(cert *x509.Certificate) string {
	names := "CN " + cert.Subject.CommonName
	if len(cert.DNSNames) > 0 {
		names += " (DNS " + strings.Join(cert.DNSNames, ", ") + ")"
	}
	return names
}

// roughly is a remaining time as a person would say it: days, or hours on the last
// two days.
func roughly(d time.Duration) string {
	if d < 48*time.Hour {
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}
