package tokens

import (
	"slices"
	"strings"
	"time"
)

// HostToken is one host of the roster: a host with at least one live (unexpired) host token.
type HostToken struct {
	Host string
	// Created is the earliest live token's creation time; zero when unknown (a token
	// written before creation times were kept may be the earliest).
	Created time.Time
}

// Hosts is the fleet's roster at now (SPEC §5.1): every host with a live token, sorted
// by host. Expired tokens don't count, so a host whose last token expired has left it.
func (s *Set) Hosts(now time.Time) []HostToken {
	var hosts []HostToken
	at := map[string]int{}
	for _, e := range s.entries {
		if e.IsAdmin() || !e.Live(now) {
			continue
		}
		i, seen := at[e.Host]
		if !seen {
			at[e.Host] = len(hosts)
			hosts = append(hosts, HostToken{Host: e.Host, Created: e.Created})
			continue
		}
		h := &hosts[i]
		switch {
		case h.Created.IsZero():
		case e.Created.IsZero() || e.Created.Before(h.Created):
			h.Created = e.Created
		}
	}
	slices.SortFunc(hosts, func(a, b HostToken) int { return strings.Compare(a.Host, b.Host) })
	return hosts
}
