package doctor

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/protocol"
)

// checkClientCert looks at the certificate this host presents for mTLS: whether the
// receiver will take it is receiver-reachable's question; whether it is right, and
// how long it stays right, is this one's.
func checkClientCert(cfg config.Config, now time.Time) Check {
	rc := cfg.Receiver
	details := map[string]any{"cert_file": rc.CertFile, "key_file": rc.KeyFile}
	issue := "issue this host a certificate signed by the fleet CA with CN " + cfg.Host +
		" and put it and its key in receiver.cert_file and key_file"
	switch {
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
	case left < certWarnBefore:
		return warned(fmt.Sprintf("the certificate expires in %s, on %s", roughly(left), day(leaf.NotAfter)),
			"renew it before "+day(leaf.NotAfter)+": "+issue, details)
	}
	return ok(fmt.Sprintf("issued to %s, valid until %s", cfg.Host, day(leaf.NotAfter)), details)
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
