package update

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"slices"
	"sort"
	"time"
)

// checkResults is the part of a `doctor --json` report an update compares: each
// check's id and status. Read from the binary's output rather than by calling
// package doctor, because the check is of the binary on disk, old or new.
type checkResults map[string]string

// skipped are the checks whose change an update causes itself.
var skipped = []string{"update", "version"}

// runDoctor runs `bin doctor --json` with the configuration of this run. A binary
// whose doctor prints no report has every check failed: a new build that cannot
// report is worse than the old one, whatever broke.
func runDoctor(ctx context.Context, bin, configFile string, timeout time.Duration) (checkResults, string) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	args := []string{"doctor", "--json"}
	if configFile != "" {
		args = append(args, "--config", configFile)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	_ = cmd.Run() // doctor exits 1 when a check fails: the report says which
	var report struct {
		Checks []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"checks"`
	}
	if err := json.Unmarshal(out.Bytes(), &report); err != nil || len(report.Checks) == 0 {
		return nil, "`" + bin + " doctor --json` printed no report: " + firstLine(errb.String())
	}
	res := checkResults{}
	for _, c := range report.Checks {
		if !slices.Contains(skipped, c.ID) {
			res[c.ID] = c.Status
		}
	}
	return res, ""
}

// passed lists the checks that passed, sorted.
func (r checkResults) passed() []string {
	var ids []string
	for id, st := range r {
		if st == "ok" {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// regressions are the checks of before that the after run failed (or that it did not
// report at all: a nil after fails them all). A check that failed before too, such as
// receiver-reachable in a network outage, is none.
func regressions(before []string, after checkResults) []string {
	var out []string
	for _, id := range before {
		if st, ok := after[id]; !ok || st == "fail" {
			out = append(out, id)
		}
	}
	return out
}

func firstLine(s string) string {
	if i := bytes.IndexByte([]byte(s), '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
