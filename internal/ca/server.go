package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cis490/cis490/internal/config"
)

// ServerLifetime is how long the Pi's own certificate lasts. The receiver renews it
// with a third left (30 days), so doctor's server-cert check, which warns two weeks
// ahead, never sees it near its end unless renewing fails.
const ServerLifetime = 90 * 24 * time.Hour

// DetectServerNames are the names lab hosts may reach the Pi by: its host name (short
// and as the system knows it), the fleet name, localhost, and every address of its
// interfaces except link-local ones.
func DetectServerNames(fleetName string) []string {
	names := []string{"localhost"}
	if fleetName != "" {
		names = append(names, fleetName)
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		h = strings.ToLower(h)
		short, _, _ := strings.Cut(h, ".")
		names = append(names, h, short)
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			ipnet, ok := a.(*net.IPNet)
			if !ok || ipnet.IP.IsLinkLocalUnicast() || ipnet.IP.IsLinkLocalMulticast() {
				continue
			}
			names = append(names, ipnet.IP.String())
		}
	}
	return normalizeNames(names)
}

// ParseServerNames reads serve.ca.server_names or `ca init --name` values: DNS names
// and IP addresses separated by commas or spaces, checked and normalized.
func ParseServerNames(list ...string) ([]string, error) {
	var names []string
	for _, s := range list {
		split, err := config.SplitNames(s)
		if err != nil {
			return nil, err
		}
		names = append(names, split...)
	}
	return normalizeNames(names), nil
}

func normalizeNames(names []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			n = ip.String()
		} else {
			n = strings.ToLower(n)
		}
		if n != "" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// signServer issues the Pi's own certificate for names, with a new key: the chain and
// key in PEM, and its line for issued.jsonl (not yet appended).
func (c *CA) signServer(names []string) (chain, keyPEM []byte, line Issued, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, Issued{}, err
	}
	now := c.now()
	cn := "cis490 receiver"
	var dns []string
	var ips []net.IP
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, n)
		}
	}
	if len(dns) > 0 {
		cn = dns[0]
	}
	tmpl, err := c.template(cn, now, ServerLifetime)
	if err != nil {
		return nil, nil, Issued{}, err
	}
	tmpl.DNSNames, tmpl.IPAddresses = dns, ips
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		return nil, nil, Issued{}, fmt.Errorf("sign the receiver's certificate: %w", err)
	}
	if keyPEM, err = encodeKey(key); err != nil {
		return nil, nil, Issued{}, err
	}
	chain = append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), c.certPEM...)
	line = Issued{TS: now.UTC(), Serial: SerialString(tmpl.SerialNumber), Host: cn, NotBefore: tmpl.NotBefore.UTC(),
		NotAfter: tmpl.NotAfter.UTC(), By: ByServer, Names: names}
	return chain, keyPEM, line, nil
}

// ServerRenewal is what RenewServer did.
type ServerRenewal struct {
	Renewed bool
	Why     string // why it renewed, or why it did not
	Issued  Issued // the new certificate, when Renewed
}

// RenewServer renews the Pi's own certificate at certFile/keyFile (one file, or two
// replaced together: WritePair) when this CA issued it and it is past two thirds of
// its life, expired, or not for names (when names is not empty; else its own names
// are kept). A certificate of another CA is left alone: it is the operator's.
func (c *CA) RenewServer(certFile, keyFile string, names []string) (ServerRenewal, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return ServerRenewal{}, fmt.Errorf("serve.tls cert_file %s / key_file %s: %w", certFile, keyFile, err)
	}
	leaf := pair.Leaf
	if leaf.CheckSignatureFrom(c.cert) != nil {
		return ServerRenewal{Why: "serve.tls.cert_file is not from this receiver's CA (" + c.dir + "): it is not renewed here"}, nil
	}
	now := c.now()
	current := certNames(leaf)
	switch {
	case len(names) > 0 && !slices.Equal(current, names):
		return c.writeServer(certFile, keyFile, names, fmt.Sprintf("serve.ca.server_names (%s) differ from the certificate's (%s)",
			strings.Join(names, ", "), strings.Join(current, ", ")))
	case !now.Before(leaf.NotAfter):
		return c.writeServer(certFile, keyFile, current, "it expired on "+leaf.NotAfter.UTC().Format(time.RFC3339))
	case !now.Before(RenewAfter(leaf)):
		return c.writeServer(certFile, keyFile, current, "it is past two thirds of its lifetime (until "+leaf.NotAfter.UTC().Format(time.RFC3339)+")")
	}
	return ServerRenewal{Why: "valid until " + leaf.NotAfter.UTC().Format(time.RFC3339) + ", renewed after " + RenewAfter(leaf).UTC().Format(time.RFC3339)}, nil
}

func (c *CA) writeServer(certFile, keyFile string, names []string, why string) (ServerRenewal, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	unlock, err := c.lock()
	if err != nil {
		return ServerRenewal{}, err
	}
	defer unlock()
	chain, key, line, err := c.signServer(names)
	if err != nil {
		return ServerRenewal{}, err
	}
	if err := WritePair(certFile, keyFile, chain, key); err != nil {
		return ServerRenewal{}, fmt.Errorf("write the receiver's renewed certificate: %w", err)
	}
	if err := c.appendLine(IssuedFile, line); err != nil {
		return ServerRenewal{}, fmt.Errorf("record the receiver's certificate in %s: %w", IssuedFile, err)
	}
	return ServerRenewal{Renewed: true, Why: why, Issued: line}, nil
}

// RenewAfter is when a certificate is due for renewal: two thirds into its lifetime.
func RenewAfter(cert *x509.Certificate) time.Time {
	return cert.NotBefore.Add(cert.NotAfter.Sub(cert.NotBefore) * 2 / 3)
}

// certNames are a certificate's DNS names and addresses, as normalizeNames orders them.
func certNames(cert *x509.Certificate) []string {
	names := slices.Clone(cert.DNSNames)
	for _, ip := range cert.IPAddresses {
		names = append(names, ip.String())
	}
	return normalizeNames(names)
}
