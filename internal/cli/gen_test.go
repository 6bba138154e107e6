package cli

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		files[rel] = string(b)
		return err
	}))
	return files
}

func TestGen(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	stale := filepath.Join(out, "man", "cis490-removed-command.1")
	require.NoError(t, os.MkdirAll(filepath.Dir(stale), 0o755))
	require.NoError(t, os.WriteFile(stale, []byte("old"), 0o644))

	code, _, errs := runCLI(t, "", "gen", "--out", out)
	require.Equal(t, ExitOK, code, errs)
	first := readTree(t, out)

	assert.NotContains(t, first, "man/cis490-removed-command.1", "man/ is wiped first")
	for _, f := range []string{"completions/cis490.bash", "completions/_cis490", "completions/cis490.fish", "completions/cis490.ps1", "packaging/lab-host.toml.example"} {
		assert.NotEmpty(t, first[f], f)
	}

	// One page for every command a user can run, none for the hidden ones nor for
	// cobra's completion command (gen hides it).
	var want []string
	walkCommands(NewRoot(Streams{}), func(c *cobra.Command) {
		if !c.Hidden && !strings.HasPrefix(c.CommandPath(), "cis490 completion") {
			want = append(want, "man/"+strings.ReplaceAll(c.CommandPath(), " ", "-")+".1")
		}
	})
	var pages []string
	for f, body := range first {
		if strings.HasPrefix(f, "man/") {
			pages = append(pages, f)
			assert.Contains(t, body, `"Nov 2026" "cis490" "cis490 manual"`, f)
			assert.NotContains(t, body, "Auto generated", f)
		}
	}
	assert.ElementsMatch(t, want, pages)
	assert.NotContains(t, first, "man/cis490-gen.1")
	assert.NotContains(t, first, "man/cis490-completion.1")
	assert.Contains(t, first["man/cis490-install-lab-host.1"], "Exit codes: 0 installed")

	code, _, errs = runCLI(t, "", "gen", "--out", out)
	require.Equal(t, ExitOK, code, errs)
	assert.Equal(t, first, readTree(t, out), "generating twice gives the same bytes")
}

func TestGenBashCompletionLoads(t *testing.T) {
	t.Parallel()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed")
	}
	out := t.TempDir()
	code, _, errs := runCLI(t, "", "gen", "--out", out)
	require.Equal(t, ExitOK, code, errs)
	cmd := exec.Command(bash, "-c", `source "$1" && complete -p cis490`, "bash", filepath.Join(out, "completions", "cis490.bash"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	assert.Equal(t, "complete -o default -F __start_cis490 cis490\n", stdout.String())
	assert.Empty(t, stderr.String())
}
