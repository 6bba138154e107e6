package ca

import (
	"fmt"
	"os"
	"time"
)

// EnvClockOffset moves the receiver's CA clock (issuance, revocations, the handshake's
// validity check) by a Go duration, e.g. "61m" or "-721h". It exists for the
// end-to-end tests only (internal/e2e: "the old serial stops working an hour later",
// "an expired certificate renews by bootstrap"), which run the real binary and cannot
// wait an hour; `cis490 serve` logs a warning whenever it is set.
const EnvClockOffset = "CIS490_TEST_CLOCK_OFFSET"

// ClockFromEnv is time.Now moved by $CIS490_TEST_CLOCK_OFFSET, and that offset.
func ClockFromEnv() (func() time.Time, time.Duration, error) {
	v, ok := os.LookupEnv(EnvClockOffset)
	if !ok || v == "" {
		return time.Now, 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return nil, 0, fmt.Errorf("$%s: %w (a Go duration such as 61m; it is for tests only: unset it)", EnvClockOffset, err)
	}
	return func() time.Time { return time.Now().Add(d) }, d, nil
}
