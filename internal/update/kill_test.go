package update

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/client"
	"github.com/cis490/cis490/internal/config"
)

// crashChild is set in the environment of a test binary re-executed to run one update
// and kill itself with SIGKILL at a step: a real kill -9, so nothing deferred runs.
const crashChild = "UPDATE_TEST_CRASH_PLAN"

type crashPlan struct {
	Step   string        `json:"step"`
	Config config.Config `json:"config"`
	Binary string        `json:"binary"`
}

func TestMain(m *testing.M) {
	if plan := os.Getenv(crashChild); plan != "" {
		os.Exit(crashRun(plan))
	}
	os.Exit(m.Run())
}

func crashRun(plan string) int {
	var p crashPlan
	if err := json.Unmarshal([]byte(plan), &p); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	c, err := client.New(p.Config, client.Options{Retries: 0})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	_, err = Run(context.Background(), Options{Config: p.Config, Client: c, Binary: p.Binary, Logger: zerolog.Nop(),
		AtStep: func(step string) {
			if step == p.Step {
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {} // the signal arrives
			}
		}})
	fmt.Fprintln(os.Stderr, "not killed:", err)
	return 4
}

// killAt runs one update in a child process that dies by SIGKILL at step.
func (h *host) killAt(step string) {
	h.t.Helper()
	plan, err := json.Marshal(crashPlan{Step: step, Config: h.cfg, Binary: h.bin})
	require.NoError(h.t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChild+"="+string(plan))
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(h.t, err, &ee, "the child must die at %s: %s", step, out)
	ws := ee.Sys().(syscall.WaitStatus)
	require.True(h.t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "killed at %s: %s", step, out)
}

// At every step of an update killed with SIGKILL, the binary is the old one or the
// new one, whole and working; the next run ends where an uninterrupted one would.
func TestKillAtEveryStep(t *testing.T) {
	broken := fake{commit: commitB, checks: with(healthy, map[string]string{"token": "fail", "commit-allowed": "ok"})}
	for _, tc := range []struct {
		next  fake
		steps []string
		want  string // the result after the next run
		bin   string // the commit at the end
	}{
		{newer, []string{"locked", "downloaded", "smoke-tested", "doctor-before", "kept-previous", "pending", "switched", "doctor-after", "recorded"}, ResultUpdated, commitB},
		{broken, []string{"switched", "doctor-after", "rolling-back", "rolled-back", "recorded"}, ResultRolledBack, commitA},
	} {
		for _, step := range tc.steps {
			t.Run(tc.want+"/"+step, func(t *testing.T) {
				h := newHost(t, fake{commit: commitA, checks: healthy})
				newData := tc.next.script()
				h.publish(tc.next, 5, h.key)
				h.killAt(step)

				got, err := os.ReadFile(h.bin)
				require.NoError(t, err)
				assert.True(t, string(got) == string(h.oldData) || string(got) == string(newData), "the binary is whole: the old or the new")
				assert.Contains(t, []string{commitA, commitB}, h.installed(), "and it runs")

				_, _ = h.run() // a rollback answers an error; the state says what happened
				s := h.state()
				if step == "recorded" && tc.want == ResultUpdated {
					assert.Equal(t, ResultUpToDate, s.Result, "the killed run had finished")
				} else if step == "recorded" {
					assert.Equal(t, ResultRefused, s.Result, "the killed run had rolled back; the release is marked bad")
				} else {
					assert.Equal(t, tc.want, s.Result, s.Reason)
				}
				assert.Nil(t, s.Pending)
				assert.Equal(t, tc.bin, h.installed())
				assert.Empty(t, h.temps(), "nothing left behind")
			})
		}
	}
}
