package cli

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/install"
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
	want = append(want, "man/"+configPage)
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

// genTree runs gen into a fresh folder and returns it.
func genTree(t *testing.T) string {
	t.Helper()
	out := t.TempDir()
	code, _, errs := runCLI(t, "", "gen", "--out", out)
	require.Equal(t, ExitOK, code, errs)
	return out
}

// manText is a page as man shows it: rendered by groff when the machine has it, else
// the source with gen's escapes undone.
func manText(t *testing.T, page string) string {
	t.Helper()
	src, err := os.ReadFile(page)
	require.NoError(t, err)
	if groff, err := exec.LookPath("groff"); err == nil {
		cmd := exec.Command(groff, "-man", "-Tutf8", "-P-cbou", page)
		cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
		var out, errs bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errs
		require.NoError(t, cmd.Run(), errs.String())
		return out.String()
	}
	return strings.NewReplacer(`\e`, `\`, `\-`, "-", `\(aq`, "'", `\(ga`, "`", `\(ha`, "^", `\(ti`, "~", `\&`, "", `\fB`, "", `\fR`, "", `\fI`, "").Replace(string(src))
}

// documented says whether c has a page: it and its parents are available, and it is
// not cobra's completion command (gen hides it).
func documented(c *cobra.Command) bool {
	for p := c; p != nil; p = p.Parent() {
		if p.Name() == "completion" || (p.HasParent() && !p.IsAvailableCommand()) {
			return false
		}
	}
	return true
}

// Every <placeholder> in the help of every command (its text, its examples, its
// flags' usage and defaults) is in its man page as man prints it: cobra/doc read the
// help as Markdown and dropped them as HTML tags ("default /alerts.jsonl").
func TestManKeepsEveryPlaceholder(t *testing.T) {
	t.Parallel()
	out := genTree(t)
	placeholder := regexp.MustCompile(`<[A-Za-z_][A-Za-z0-9_.-]*>`)
	seen := 0
	walkCommands(NewRoot(Streams{}), func(c *cobra.Command) {
		if !documented(c) {
			return
		}
		page := manText(t, filepath.Join(out, "man", manName(c)+".1"))
		texts := []string{c.Use, c.Short, c.Long, c.Example}
		visit := func(f *pflag.Flag) { texts = append(texts, f.Usage, f.DefValue) }
		c.Flags().VisitAll(visit)
		c.InheritedFlags().VisitAll(visit)
		for _, text := range texts {
			for _, p := range placeholder.FindAllString(text, -1) {
				seen++
				if !strings.Contains(page, p) {
					t.Errorf("%s(1) lost %s of its help", manName(c), p)
				}
			}
		}
	})
	assert.GreaterOrEqual(t, seen, 7, "the help has placeholders to check (<data_dir>, <host>, <SECTION>, …)")

	assert.Contains(t, manText(t, filepath.Join(out, "man", "cis490.1")), "CIS490_<SECTION>_<KEY>")
	keysPage := manText(t, filepath.Join(out, "man", configPage))
	for _, k := range install.Keys() {
		for _, p := range placeholder.FindAllString(k.Help, -1) {
			if !strings.Contains(keysPage, p) {
				t.Errorf("%s(5) lost %s of %s's help", configPage, p, k.Name)
			}
		}
	}
}

// The help is printed as written: an indented table stays a table, a line with
// quotes and dashes copies and pastes as the command it shows.
func TestManPrintsTheHelpAsWritten(t *testing.T) {
	t.Parallel()
	out := genTree(t)
	check := manText(t, filepath.Join(out, "man", "cis490-fleet-health-check.1"))
	assert.Regexp(t, `(?m)^ +silent {10}nothing within silent_after`, check, "the symptom table keeps its columns")
	assert.Regexp(t, `(?m)^ +report-stale {4}no doctor report for report_stale_after +warning$`, check)
	assert.Contains(t, check, "cis490 fleet-health check --now +2h --json | jq .hosts")
	silence := manText(t, filepath.Join(out, "man", "cis490-alerts-silence.1"))
	assert.Contains(t, silence, "cis490 alerts silence --host H [--symptom S] (--for D | --until T) --reason TEXT")
	doctor := manText(t, filepath.Join(out, "man", "cis490-doctor.1"))
	assert.Contains(t, doctor, `cis490 doctor --json | jq '.checks[] | select(.status != "ok")'`)
	assert.Regexp(t, `--log-level string\s+log level: debug, info, warn, error \(default "info"\)`, doctor)
	assert.NotRegexp(t, `--strict.*\(default false\)`, doctor, "no default for a zero value, as --help")
}

// groff finds nothing to warn about in any page (-ww: every warning).
func TestManPagesAreCleanRoff(t *testing.T) {
	t.Parallel()
	groff, err := exec.LookPath("groff")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("groff is not installed: apt-get install groff-base")
		}
		t.Skip("groff is not installed")
	}
	out := genTree(t)
	pages, err := filepath.Glob(filepath.Join(out, "man", "*.[15]"))
	require.NoError(t, err)
	require.NotEmpty(t, pages)
	for _, page := range pages {
		cmd := exec.Command(groff, "-man", "-ww", "-z", page)
		b, err := cmd.CombinedOutput()
		assert.NoError(t, err, page)
		assert.Empty(t, string(b), page)
	}
}

// lab-host.toml(5) has every key of the schema the example config is written from:
// its table, default and variable.
func TestConfigManPageListsEveryKey(t *testing.T) {
	t.Parallel()
	out := genTree(t)
	page := manText(t, filepath.Join(out, "man", configPage))
	src, err := os.ReadFile(filepath.Join(out, "man", configPage))
	require.NoError(t, err)
	assert.Contains(t, string(src), `.TH "LAB-HOST.TOML" "5" "Nov 2026" "cis490" "cis490 manual"`)
	keys := install.Keys()
	require.NotEmpty(t, keys)
	for _, tbl := range install.Tables() {
		assert.Contains(t, page, "["+tbl.Name+"]")
	}
	// Each key's entry, in order: "name = default", its help, its variable.
	rest := page[strings.Index(page, "KEYS"):]
	for _, k := range keys {
		short := k.Name[strings.LastIndex(k.Name, ".")+1:]
		entry := short + " = " + k.TOML()
		if k.Name == "host" {
			entry = "host"
		}
		i := strings.Index(rest, entry)
		if !assert.GreaterOrEqual(t, i, 0, "%s: %q", k.Name, entry) {
			continue
		}
		rest = rest[i:]
		env := strings.Index(rest, "Environment: "+k.Env())
		assert.GreaterOrEqual(t, env, 0, k.Name)
		assert.Contains(t, strings.Join(strings.Fields(rest[:max(env, 0)]), " "), k.Help, k.Name)
	}
	for _, want := range []string{"FILES", "--config PATH", "$CIS490_CONFIG", "/etc/cis490/lab-host.toml",
		"$XDG_CONFIG_HOME/cis490/lab-host.toml", "/etc/cis490/token", "/var/lib/cis490", "episodes/<host>/<sha256>"} {
		assert.Contains(t, page, want)
	}
	search := strings.Index(page, "1. --config PATH")
	assert.Less(t, search, strings.Index(page, "2. $CIS490_CONFIG"))
	assert.Less(t, strings.Index(page, "2. $CIS490_CONFIG"), strings.Index(page, "3. /etc/cis490/lab-host.toml"))
	assert.Contains(t, manText(t, filepath.Join(out, "man", "cis490.1")), "lab-host.toml(5)", "the pages point to it")
}

// The variable the page gives for each key is one the configuration reads: a name
// config does not know is "not a setting". (Not in parallel: it sets variables.)
func TestConfigManPageVariablesAreSettings(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "lab-host.toml")
	require.NoError(t, os.WriteFile(cfg, nil, 0o600))
	for _, k := range install.Keys() {
		t.Run(k.Name, func(t *testing.T) {
			t.Setenv(k.Env(), strings.Trim(k.TOML(), `"`))
			_, err := config.Load(config.New(), cfg)
			if err != nil {
				assert.NotContains(t, err.Error(), "is not a setting")
			}
		})
	}
	// Spelt in two pieces: config's TestEveryCIS490VariableIsKnown reads the sources
	// for variable names, and this one is wrong on purpose.
	t.Setenv("CIS490_SERVE_TOKENS_FILE"+"X", "x")
	_, err := config.Load(config.New(), cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is not a setting", "the check above can fail")
}
