package doctor

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func constant(c Check) func(context.Context) Check {
	return func(context.Context) Check { return c }
}

func TestRunAllKeepsDefinitionOrderAndFillsIDs(t *testing.T) {
	t.Parallel()
	defs := []definition{
		{id: "slow", run: func(context.Context) Check { time.Sleep(20 * time.Millisecond); return ok("slow", nil) }},
		{id: "fast", run: constant(warned("fast", "do this", nil))},
	}
	checks := runAll(context.Background(), defs, time.Second)
	require.Len(t, checks, 2)
	assert.Equal(t, "slow", checks[0].ID)
	assert.Equal(t, OK, checks[0].Status)
	assert.GreaterOrEqual(t, checks[0].DurationMS, 20.0)
	assert.Equal(t, "fast", checks[1].ID)
	assert.Equal(t, Warn, checks[1].Status)
	assert.NotNil(t, checks[1].Details, "details is {} rather than null")
}

// Every check waits until all of them have started: run one after another, they
// would deadlock until the deadline.
func TestRunAllRunsChecksConcurrently(t *testing.T) {
	t.Parallel()
	const n = 5
	var started sync.WaitGroup
	started.Add(n)
	defs := make([]definition, n)
	for i := range defs {
		defs[i] = definition{id: "c", run: func(ctx context.Context) Check {
			started.Done()
			started.Wait()
			return ok("together", nil)
		}}
	}
	for _, c := range runAll(context.Background(), defs, 5*time.Second) {
		assert.Equal(t, OK, c.Status, c.Summary)
	}
}

func TestRunAllCutsOffChecksAtTheDeadline(t *testing.T) {
	t.Parallel()
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	defs := []definition{
		{id: "hung", run: func(context.Context) Check { <-hang; return ok("never", nil) }, slowHint: "look at the hung thing"},
		{id: "ctx-aware", run: func(ctx context.Context) Check { <-ctx.Done(); return failed(ctx.Err().Error(), "misleading", nil) }},
		{id: "quick", run: constant(ok("fine", nil))},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	checks := runAll(ctx, defs, 200*time.Millisecond)
	assert.Less(t, time.Since(start), 2*time.Second, "the run never waits for a hung check")

	assert.Equal(t, Fail, checks[0].Status)
	assert.Equal(t, "did not finish within doctor.timeout (200ms)", checks[0].Summary)
	assert.Equal(t, "look at the hung thing", checks[0].Hint)
	assert.Equal(t, Fail, checks[1].Status)
	assert.Contains(t, checks[1].Summary, "did not finish within doctor.timeout", "the deadline, not the check's own context error")
	assert.Equal(t, "raise doctor.timeout in lab-host.toml", checks[1].Hint)
	assert.Equal(t, OK, checks[2].Status)
}

func TestRunAllSurvivesAPanickingCheck(t *testing.T) {
	t.Parallel()
	checks := runAll(context.Background(), []definition{
		{id: "broken", run: func(context.Context) Check { panic("boom") }},
		{id: "fine", run: constant(ok("fine", nil))},
	}, time.Second)
	assert.Equal(t, Fail, checks[0].Status)
	assert.Contains(t, checks[0].Summary, "boom")
	assert.Equal(t, "broken", checks[0].ID)
	assert.Equal(t, OK, checks[1].Status)
}

func TestReportStatusIsTheWorstAndSkipDoesNotCount(t *testing.T) {
	t.Parallel()
	r := Report{Checks: []Check{{ID: "a", Status: OK}, {ID: "b", Status: Skip}, {ID: "c", Status: Warn}}}
	assert.Equal(t, []string{"c"}, r.Failing(Warn))
	assert.Empty(t, r.Failing(Fail))
	r.Checks = append(r.Checks, Check{ID: "d", Status: Fail})
	assert.Equal(t, []string{"d"}, r.Failing(Fail))
	assert.Equal(t, []string{"c", "d"}, r.Failing(Warn))
	assert.Equal(t, 1, r.Count(Skip))
}
