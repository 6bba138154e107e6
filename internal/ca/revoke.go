package ca

import (
	"errors"
	"fmt"
)

// ErrUnknownSerial: no certificate with that serial in issued.jsonl.
var ErrUnknownSerial = errors.New("no certificate with that serial in " + IssuedFile + " (`cis490 cert list` shows them)")

// Revoked is what a revocation did to one certificate.
type Revoked struct {
	Issued
	Already bool // it was revoked before: nothing written for it
}

// RevokeSerial revokes one certificate from now on (a renewal's replaced certificate
// too, before its hour is up). It also closes its host's bootstrap (bootstrapRefusal).
func (c *CA) RevokeSerial(serial string) (Revoked, error) {
	var out Revoked
	err := c.change(func(l Ledger) error {
		is, ok := l.Find(serial)
		if !ok {
			return fmt.Errorf("serial %s: %w", serial, ErrUnknownSerial)
		}
		var err error
		out, err = c.revoke(l, is)
		return err
	})
	return out, err
}

// RevokeHost revokes every certificate of host that still works or would until its
// replacement's hour is up, and closes its bootstrap even when there is none.
func (c *CA) RevokeHost(host string) ([]Revoked, error) {
	var out []Revoked
	err := c.change(func(l Ledger) error {
		now := c.now()
		for _, is := range l.Issued {
			if is.Host != host || is.By == ByServer || !now.Before(is.NotAfter) {
				continue
			}
			r, err := c.revoke(l, is)
			if err != nil {
				return err
			}
			if !r.Already {
				out = append(out, r)
			}
		}
		if len(out) == 0 {
			return c.appendLine(RevokedFile, Revocation{TS: now.UTC(), Host: host, At: now.UTC(), Reason: ReasonRevoked})
		}
		return nil
	})
	return out, err
}

func (c *CA) revoke(l Ledger, is Issued) (Revoked, error) {
	now := c.now()
	if at, ok := l.RevokedAt(is.Serial); ok && !now.Before(at) {
		return Revoked{Issued: is, Already: true}, nil
	}
	err := c.appendLine(RevokedFile, Revocation{TS: now.UTC(), Serial: is.Serial, Host: is.Host, At: now.UTC(), NotAfter: is.NotAfter, Reason: ReasonRevoked})
	return Revoked{Issued: is}, err
}

// AllowBootstrap lets host get one certificate on its token alone, whatever
// serve.ca.bootstrap says and even after a revocation.
func (c *CA) AllowBootstrap(host string) (Allowance, error) {
	a := Allowance{TS: c.now().UTC(), Host: host}
	return a, c.change(func(Ledger) error { return c.appendLine(AllowFile, a) })
}

// change runs f on the ledger under the CA's lock.
func (c *CA) change(f func(Ledger) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	unlock, err := c.lock()
	if err != nil {
		return err
	}
	defer unlock()
	l, err := ReadLedger(c.dir)
	if err != nil {
		return err
	}
	return f(l)
}
