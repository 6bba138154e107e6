package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ByteSize is a number of bytes; the file may say 1048576, "1MiB", "512MB" or "4G".
type ByteSize int64

const (
	KiB ByteSize = 1 << (10 * (iota + 1))
	MiB
	GiB
	TiB
)

var sizeUnits = []struct {
	suffix string
	mult   ByteSize
}{
	{"kib", KiB}, {"mib", MiB}, {"gib", GiB}, {"tib", TiB},
	{"kb", 1000}, {"mb", 1000 * 1000}, {"gb", 1000 * 1000 * 1000}, {"tb", 1000 * 1000 * 1000 * 1000},
	{"k", KiB}, {"m", MiB}, {"g", GiB}, {"t", TiB},
	{"b", 1},
}

// ParseByteSize reads "123", "10MiB", "1.5GB" and the like.
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := ByteSize(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("invalid size %q: use bytes or a unit such as 512MiB or 4GiB", s)
	}
	return ByteSize(f * float64(mult)), nil
}

func (b ByteSize) String() string {
	for _, u := range []struct {
		s string
		m ByteSize
	}{{"TiB", TiB}, {"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB}} {
		if b >= u.m && b%u.m == 0 {
			return fmt.Sprintf("%d%s", b/u.m, u.s)
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// ParseDuration is time.ParseDuration that also takes days ("14d", "1d12h"), since
// retention periods are naturally counted in days.
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if days, rest, ok := strings.Cut(t, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("invalid duration %q: use Go durations such as 30m, 36h or 14d", s)
		}
		d := time.Duration(n) * 24 * time.Hour
		if rest == "" {
			return d, nil
		}
		r, err := time.ParseDuration(rest)
		if err != nil || r < 0 || strings.HasPrefix(rest, "+") {
			return 0, fmt.Errorf("invalid duration %q: use Go durations such as 30m, 36h or 14d", s)
		}
		return d + r, nil
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: use Go durations such as 30m, 36h or 14d", s)
	}
	return d, nil
}
