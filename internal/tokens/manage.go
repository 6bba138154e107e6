package tokens

import (
	"errors"
	"fmt"
	"time"

	"github.com/cis490/cis490/internal/protocol"
)

// ErrNoMatch is what a revocation or rotation that finds no token to act on returns
// (errors.Is); the file is then left as it was.
var ErrNoMatch = errors.New("no token matched")

// noMatch is an ErrNoMatch whose message says what was looked for, in place of the
// sentinel's words rather than after them.
type noMatch struct{ msg string }

func (e noMatch) Error() string        { return e.msg }
func (e noMatch) Is(target error) bool { return target == ErrNoMatch }

// Selector picks the entries `token revoke` removes: exactly one field is set.
type Selector struct {
	Host  string
	Admin string
	ID    string
}

func (s Selector) String() string {
	switch {
	case s.ID != "":
		return fmt.Sprintf("with id %q", s.ID)
	case s.Admin != "":
		return "of admin " + s.Admin
	default:
		return "of host " + s.Host
	}
}

func (s Selector) normalize() (Selector, error) {
	set := 0
	for _, v := range []string{s.Host, s.Admin, s.ID} {
		if v != "" {
			set++
		}
	}
	if set != 1 {
		return s, errors.New("select tokens by exactly one of host, admin or id")
	}
	if s.Host != "" {
		host, ok := protocol.NormalizeHost(s.Host)
		if !ok {
			return s, fmt.Errorf("host %s is not a valid RFC 1123 host name", quote(s.Host))
		}
		s.Host = host
	}
	return s, nil
}

func (s Selector) matches(e Entry) bool {
	switch {
	case s.ID != "":
		return e.ID == s.ID
	case s.Admin != "":
		return e.Admin == s.Admin
	default:
		return !e.IsAdmin() && e.Host == s.Host
	}
}

// Revoke removes the entries sel picks from the tokens file at path, in one atomic
// write, and returns them. Nothing matching is ErrNoMatch.
func Revoke(path string, sel Selector) ([]Entry, error) {
	sel, err := sel.normalize()
	if err != nil {
		return nil, fmt.Errorf("revoke: %w", err)
	}
	var removed []Entry
	err = update(path, false, func(lay *layout, set *Set) ([]Entry, error) {
		var kept []Entry
		for i, e := range set.entries {
			if sel.matches(e) {
				removed = append(removed, e)
				lay.remove(i)
			} else {
				kept = append(kept, e)
			}
		}
		if len(removed) == 0 {
			return nil, noMatch{fmt.Sprintf("no token %s in %s; nothing was changed", sel, path)}
		}
		return kept, nil
	})
	if err != nil {
		return nil, err
	}
	return removed, nil
}

// Rotation is what Rotate did.
type Rotation struct {
	Token string  // the new token, which exists nowhere else: show it once
	New   Entry   // its entry
	Old   []Entry // the host's tokens that were live, with their new expiry (or removed, when grace was 0)
}

// Rotate mints a new token for host and makes its live tokens expire at now+grace (an
// earlier expiry stays), in one atomic write: the host keeps working with the old token
// until it has the new one. A grace of 0 revokes all its old tokens at once. A host
// without a live token is ErrNoMatch: its first token comes from Append.
func Rotate(path, host string, now time.Time, grace time.Duration) (Rotation, error) {
	if grace < 0 {
		return Rotation{}, fmt.Errorf("rotate: grace %s is negative; give 0 to revoke the old tokens now", grace)
	}
	id, err := Identity{Host: host}.normalize()
	if err != nil {
		return Rotation{}, fmt.Errorf("rotate: %w", err)
	}
	expires := now.Add(grace).UTC().Truncate(time.Second)
	var rot Rotation
	err = update(path, false, func(lay *layout, set *Set) ([]Entry, error) {
		var want []Entry
		for i, e := range set.entries {
			mine := !e.IsAdmin() && e.Host == id.Host
			switch {
			case mine && grace == 0:
				if e.Live(now) {
					rot.Old = append(rot.Old, e)
				}
				lay.remove(i)
				continue
			case mine && e.Live(now):
				if e.Expires.IsZero() || expires.Before(e.Expires) {
					e.Expires = expires
					lay.setExpires(i, expires)
				}
				rot.Old = append(rot.Old, e)
			}
			want = append(want, e)
		}
		if len(rot.Old) == 0 {
			return nil, noMatch{fmt.Sprintf("no live token of host %s in %s to rotate; mint its first with `cis490 token new --host %s`",
				id.Host, path, id.Host)}
		}
		rot.Token, rot.New, err = set.newEntry(id, now)
		if err != nil {
			return nil, err
		}
		lay.blocks = append(lay.blocks, block{body: []string{formatEntry(rot.New)}})
		return append(want, rot.New), nil
	})
	if err != nil {
		return Rotation{}, err
	}
	return rot, nil
}
