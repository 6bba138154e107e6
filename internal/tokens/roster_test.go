package tokens

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHosts(t *testing.T) {
	t.Parallel()
	day := func(d int) string { return now.AddDate(0, 0, d).Format(time.RFC3339) }
	entry := func(hash, who string, more ...string) string {
		return "[[token]]\nsha256 = \"" + Hash(hash) + "\"\n" + who + "\n" + strings.Join(more, "\n") + "\n"
	}
	for _, tc := range []struct {
		name string
		file string
		want []HostToken
	}{
		{"empty", "", nil},
		{"admins are not hosts", entry("a", `admin = "alice"`, "created = "+day(-3)), nil},
		{
			"sorted by host, lowercased",
			entry("b", `host = "lab-09"`, "created = "+day(-1)) + entry("a", `host = "LAB-02"`, "created = "+day(-2)),
			[]HostToken{{Host: "lab-02", Created: now.AddDate(0, 0, -2)}, {Host: "lab-09", Created: now.AddDate(0, 0, -1)}},
		},
		{
			"the earliest live token's creation",
			entry("a", `host = "lab-07"`, "created = "+day(-1)) + entry("b", `host = "lab-07"`, "created = "+day(-5)),
			[]HostToken{{Host: "lab-07", Created: now.AddDate(0, 0, -5)}},
		},
		{
			"a token without a creation time may be the earliest",
			entry("a", `host = "lab-07"`, "created = "+day(-1)) + entry("b", `host = "lab-07"`),
			[]HostToken{{Host: "lab-07"}},
		},
		{
			"expired tokens do not count",
			entry("a", `host = "lab-07"`, "created = "+day(-9), "expires = "+now.Format(time.RFC3339)) +
				entry("b", `host = "lab-07"`, "created = "+day(-1)) +
				entry("c", `host = "lab-08"`, "created = "+day(-9), "expires = "+day(-1)),
			[]HostToken{{Host: "lab-07", Created: now.AddDate(0, 0, -1)}},
		},
		{
			"a token in its grace period counts",
			entry("a", `host = "lab-07"`, "created = "+day(-9), "expires = "+day(1)),
			[]HostToken{{Host: "lab-07", Created: now.AddDate(0, 0, -9)}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, err := Parse([]byte(tc.file), "tokens.toml")
			require.NoError(t, err)
			got := set.Hosts(now)
			require.Len(t, got, len(tc.want))
			for i := range tc.want {
				assert.Equal(t, tc.want[i].Host, got[i].Host)
				assert.True(t, tc.want[i].Created.Equal(got[i].Created), "%s: created %s, want %s", got[i].Host, got[i].Created, tc.want[i].Created)
			}
		})
	}
}
