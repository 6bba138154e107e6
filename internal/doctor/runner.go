package doctor

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// definition is a check before it runs.
type definition struct {
	id  string
	run func(ctx context.Context) Check
	// slowHint is the hint when the check is cut off by the deadline: what is likely
	// hanging, not just "raise the timeout".
	slowHint string
	// needsConfig checks are skipped when the configuration did not load.
	needsConfig bool
}

// runAll runs every check concurrently and returns their results in definition
// order. It returns by ctx's deadline whatever happens: a check that has not answered
// by then is reported failed, and its goroutine is left to notice ctx on its own (a
// hung NFS statfs cannot be interrupted, and the process is about to exit anyway).
func runAll(ctx context.Context, defs []definition, timeout time.Duration) []Check {
	type result struct {
		i int
		c Check
	}
	results := make(chan result, len(defs)) // buffered: a late check never blocks
	for i, d := range defs {
		go func() {
			start := time.Now()
			c := safely(ctx, d)
			c.ID, c.DurationMS = d.id, millis(time.Since(start))
			if c.Details == nil {
				c.Details = map[string]any{} // readers get {} rather than null
			}
			results <- result{i, c}
		}()
	}
	start := time.Now()
	checks := make([]Check, len(defs))
	done := make([]bool, len(defs))
	for range defs {
		select {
		case r := <-results:
			// A check that failed after the deadline failed because of it; its own
			// error ("context deadline exceeded", "no answer within receiver.timeout")
			// would hide which limit was hit.
			if ctx.Err() != nil && r.c.Status == Fail {
				r.c = cutOff(ctx, defs[r.i], timeout, r.c.DurationMS)
			}
			checks[r.i], done[r.i] = r.c, true
		case <-ctx.Done():
			for i, d := range defs {
				if !done[i] {
					checks[i] = cutOff(ctx, d, timeout, millis(time.Since(start)))
				}
			}
			return checks
		}
	}
	return checks
}

func cutOff(ctx context.Context, d definition, timeout time.Duration, ms float64) Check {
	c := Check{ID: d.id, Status: Fail, DurationMS: ms, Details: map[string]any{"timeout": timeout.String()}}
	if errors.Is(ctx.Err(), context.Canceled) {
		c.Summary = "interrupted before it finished"
		c.Hint = "run `cis490 doctor` again"
		return c
	}
	c.Summary = fmt.Sprintf("did not finish within doctor.timeout (%s)", timeout)
	c.Hint = d.slowHint
	if c.Hint == "" {
		c.Hint = "raise doctor.timeout in lab-host.toml"
	}
	return c
}

// safely turns a panicking check into a failed one: one broken check must not take
// the whole report (and the host's ability to report) down with it.
func safely(ctx context.Context, d definition) (c Check) {
	defer func() {
		if p := recover(); p != nil {
			c = failed(fmt.Sprintf("the check crashed: %v", p), "this is a bug in cis490: please report it with the output of `cis490 doctor --json`", nil)
		}
	}()
	return d.run(ctx)
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func ok(summary string, details map[string]any) Check {
	return Check{Status: OK, Summary: summary, Details: details}
}

func warned(summary, hint string, details map[string]any) Check {
	return Check{Status: Warn, Summary: summary, Hint: hint, Details: details}
}

func failed(summary, hint string, details map[string]any) Check {
	return Check{Status: Fail, Summary: summary, Hint: hint, Details: details}
}

func skipped(summary string) Check { return Check{Status: Skip, Summary: summary} }
