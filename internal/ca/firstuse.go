package ca

import (
	"crypto/x509"
	"fmt"
	"sync"
)

// usedSerials are the serials this process has already seen in use: Used does its
// work once a serial.
type usedSerials struct {
	mu   sync.Mutex
	seen map[string]bool
}

// Used is called with each verified client certificate a request arrives with. The
// first time a renewal's certificate is used, the certificate it replaced is revoked
// RenewalOverlap later (SPEC §4.6: a stolen old certificate stops working). Not at
// issuance: a host whose new pair failed its trial handshake, or that died before
// keeping it, still holds only the old one, and revoking that would lock it out
// (its token alone does not bootstrap while the unused new one counts as valid).
// cert renew's trial request is the first use, so for a host that keeps its new
// pair the hour starts at once.
func (c *CA) Used(leaf *x509.Certificate) error {
	serial := SerialString(leaf.SerialNumber)
	c.used.mu.Lock()
	done := c.used.seen[serial]
	if !done {
		if c.used.seen == nil {
			c.used.seen = map[string]bool{}
		}
		c.used.seen[serial] = true
	}
	c.used.mu.Unlock()
	if done || leaf.CheckSignatureFrom(c.cert) != nil {
		return nil
	}
	if err := c.revokeReplaced(serial); err != nil {
		c.used.mu.Lock()
		delete(c.used.seen, serial) // try again at its next request
		c.used.mu.Unlock()
		return err
	}
	return nil
}

func (c *CA) revokeReplaced(serial string) error {
	return c.change(func(ledger Ledger) error {
		var line *Issued
		for i := range ledger.Issued {
			if ledger.Issued[i].Serial == serial {
				line = &ledger.Issued[i]
			}
		}
		if line == nil || line.Replaces == "" {
			return nil
		}
		if _, ok := ledger.RevokedAt(line.Replaces); ok {
			return nil // already on its way out (another process saw the new one first)
		}
		rev := Revocation{TS: c.now().UTC(), Serial: line.Replaces, Host: line.Host, At: c.now().Add(RenewalOverlap).UTC(), Reason: ReasonRenewed}
		for _, is := range ledger.Issued {
			if is.Serial == line.Replaces {
				rev.NotAfter = is.NotAfter
			}
		}
		if err := c.appendLine(RevokedFile, rev); err != nil {
			return fmt.Errorf("record the revocation of %s, which %s renewed: %w", line.Replaces, serial, err)
		}
		return nil
	})
}
