package config

import (
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDurationNeedsAUnit(t *testing.T) {
	isolate(t)
	for _, tc := range []struct {
		name, body string
		env        map[string]string
		want       []string // besides the source, checked by wantFile/wantEnv
		wantEnv    string   // the error names this variable rather than the file
	}{
		{name: "toml integer", body: "[serve.gate]\nrefresh = 60\n", want: []string{"serve.gate.refresh", "60 is a bare number", `needs a unit, e.g. "60s"`}},
		{name: "receiver timeout", body: "[receiver]\ntimeout = 30\n", want: []string{"receiver.timeout", "30 is a bare number", "needs a unit"}},
		{name: "toml float", body: "[doctor]\ntimeout = 1.5\n", want: []string{"doctor.timeout", "1.5 is a bare number"}},
		{name: "toml negative integer", body: "[ship]\nmax_age = -60\n", want: []string{"ship.max_age", "-60 is a bare number"}},
		{name: "string of digits", body: "[ship]\nkeep_sent = \"604800\"\n", want: []string{"ship.keep_sent", "604800 is a bare number"}},
		{name: "env digits", env: map[string]string{"CIS490_SERVE_GATE_REFRESH": "60"}, wantEnv: "$CIS490_SERVE_GATE_REFRESH",
			want: []string{"serve.gate.refresh", "60 is a bare number", "needs a unit"}},
		{name: "env digits over file", body: "[serve.gate]\nrefresh = \"1m\"\n", env: map[string]string{"CIS490_SERVE_GATE_REFRESH": " 60 "}, wantEnv: "$CIS490_SERVE_GATE_REFRESH",
			want: []string{"serve.gate.refresh", "needs a unit"}},
		{name: "zero is not a duration any key takes", body: "[serve.gate]\nrefresh = 0\n", want: []string{"serve.gate.refresh", "0s (must be positive)"}},
		{name: "zero string", body: "[receiver]\ntimeout = \"0\"\n", want: []string{"receiver.timeout", "must be positive"}},
		{name: "negative with unit", body: "[receiver]\ntimeout = \"-5s\"\n", want: []string{"receiver.timeout", "-5s (must be positive)"}},
		{name: "negative from env", env: map[string]string{"CIS490_FLEET_HEALTH_SILENT_AFTER": "-30m"}, wantEnv: "$CIS490_FLEET_HEALTH_SILENT_AFTER",
			want: []string{"fleet_health.silent_after", "must be positive"}},
		{name: "days minus hours", body: "[ship]\nkeep_sent = \"1d-5h\"\n", want: []string{"ship.keep_sent", "invalid duration"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			path := ""
			if tc.body != "" {
				path = writeConfig(t, tc.body)
			}
			_, err := Load(New(), path)
			require.Error(t, err)
			src := tc.wantEnv
			if src == "" {
				src = "config " + path
			}
			for _, w := range append(tc.want, src) {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestDurationsWithUnitsStillLoad(t *testing.T) {
	isolate(t)
	t.Setenv("CIS490_RECEIVER_TIMEOUT", "90s")
	cfg, err := Load(New(), writeConfig(t, "[serve.gate]\nrefresh = \"2m\"\n[ship]\nmax_age = \"1d12h\"\n"))
	require.NoError(t, err)
	assert.Equal(t, 90*time.Second, cfg.Receiver.Timeout)
	assert.Equal(t, 2*time.Minute, cfg.Serve.Gate.Refresh)
	assert.Equal(t, 36*time.Hour, cfg.Ship.MaxAge)
	assert.Equal(t, 10*time.Second, cfg.Doctor.Timeout, "the default, a time.Duration, is not a bare number")
}

func TestUnknownEnvVariable(t *testing.T) {
	for _, tc := range []struct {
		name, variable string
		want           string
	}{
		{"typo in key", "CIS490_SERVE_LISTN", "CIS490_SERVE_LISTN is not a setting (did you mean CIS490_SERVE_LISTEN?)"},
		{"swapped letters", "CIS490_RECIEVER_URL", "CIS490_RECIEVER_URL is not a setting (did you mean CIS490_RECEIVER_URL?)"},
		{"missing section", "CIS490_GATE_REFRESH", "(did you mean CIS490_SERVE_GATE_REFRESH?)"},
		{"ambiguous leaf", "CIS490_TIMEOUT", "(did you mean CIS490_DOCTOR_TIMEOUT, CIS490_FLEET_HEALTH_PUSH_TIMEOUT or CIS490_RECEIVER_TIMEOUT?)"},
		{"config path typo", "CIS490_CONFG", "(did you mean CIS490_CONFIG?)"},
		{"nothing close", "CIS490_WHATEVER_ELSE_ENTIRELY", "CIS490_WHATEVER_ELSE_ENTIRELY is not a setting (the README"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			isolate(t)
			t.Setenv(tc.variable, "x")
			_, err := Load(New(), "")
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestNotSettingsAreAllowed(t *testing.T) {
	for name := range notSettings {
		if name == EnvConfig {
			continue // a path, tested by TestEnvConfigPath
		}
		t.Run(name, func(t *testing.T) {
			isolate(t)
			t.Setenv(name, "1")
			_, err := Load(New(), writeConfig(t, "host = \"lab-01\"\n"))
			require.NoError(t, err)
		})
	}
}

// TestEveryCIS490VariableIsKnown scans the repository for CIS490_ names: each must be a
// key's variable or in notSettings, else checkEnv would refuse what a test, a bench,
// CI or the completion scripts set.
func TestEveryCIS490VariableIsKnown(t *testing.T) {
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Skip("not in the repository")
	}
	self, err := filepath.Abs(".")
	require.NoError(t, err)
	known := map[string]bool{}
	for k := range leaves(reflectDefault(), "") {
		known[envName(k)] = true
	}
	name := regexp.MustCompile(`CIS490_[A-Z0-9_]*[A-Z0-9]`)
	seen := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path == self || d.Name() == ".git" || d.Name() == "node_modules" || d.Name() == "dist" {
				return filepath.SkipDir
			}
			return nil
		}
		ext := filepath.Ext(path)
		if ext != ".go" && ext != ".sh" && ext != ".bash" && ext != ".fish" && ext != ".ps1" && ext != ".zsh" && ext != ".yml" && ext != ".yaml" && ext != ".md" && ext != ".example" && ext != ".service" && ext != ".toml" && d.Name() != "run" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, n := range name.FindAllString(string(b), -1) {
			seen++
			_, allowed := notSettings[n]
			assert.True(t, known[n] || allowed, "%s uses %s, which is neither a key's variable nor in notSettings", strings.TrimPrefix(path, root+"/"), n)
		}
		return nil
	})
	require.NoError(t, err)
	assert.Positive(t, seen)
}

func TestEmptyEnvVariable(t *testing.T) {
	isolate(t)
	path := writeConfig(t, `
[receiver]
ca_file = "/etc/cis490/ca.pem"
timeout = "5s"
[serve]
tokens_file = "/etc/cis490/tokens.toml"
`)
	t.Run("clears a string key", func(t *testing.T) {
		t.Setenv("CIS490_RECEIVER_CA_FILE", "")
		cfg, err := Load(New(), path)
		require.NoError(t, err)
		assert.Equal(t, "", cfg.Receiver.CAFile, "empty means the system's CAs, over the file's ca_file")
		assert.Equal(t, "/etc/cis490/tokens.toml", cfg.Serve.TokensFile)
		assert.Equal(t, 5*time.Second, cfg.Receiver.Timeout, "other keys keep the file's value")
	})
	// An unset ${VAR} in a compose file must not switch a safeguard off.
	for _, v := range []string{"CIS490_SERVE_TOKENS_FILE", "CIS490_SERVE_TLS_CLIENT_CA_FILE", "CIS490_SERVE_TLS_CERT_FILE", "CIS490_SERVE_GATE_ALLOWLIST_FILE", "CIS490_SERVE_GATE_GIT_DIR"} {
		t.Run(v, func(t *testing.T) {
			t.Setenv(v, "")
			_, err := Load(New(), path)
			require.Error(t, err)
			assert.Contains(t, err.Error(), v+" is empty, which would turn off")
		})
	}
	for _, tc := range []struct{ variable, want string }{
		{"CIS490_RECEIVER_TIMEOUT", "CIS490_RECEIVER_TIMEOUT is empty, but receiver.timeout takes a duration"},
		{"CIS490_SERVE_MAX_EPISODE_BYTES", "serve.max_episode_bytes takes a size"},
		{"CIS490_SHIP_RETRIES", "ship.retries takes a number"},
		{"CIS490_FLEET_HEALTH_SYSLOG", "fleet_health.syslog takes true or false"},
		{"CIS490_HOST", "$CIS490_HOST: bad value for host"},
		{"CIS490_SERVE_GATE_UNSTAMPED", "$CIS490_SERVE_GATE_UNSTAMPED: bad value for serve.gate.unstamped"},
		{"CIS490_SHIP_SPOOL_DIR", "$CIS490_SHIP_SPOOL_DIR: bad value for ship.spool_dir: empty"},
	} {
		t.Run(tc.variable, func(t *testing.T) {
			t.Setenv(tc.variable, "")
			_, err := Load(New(), path)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestBadEnvValueOfCheckedKeyNamesTheVariable(t *testing.T) {
	isolate(t)
	path := writeConfig(t, "[serve.gate]\nunstamped = \"allow\"\n")
	t.Setenv("CIS490_SERVE_GATE_UNSTAMPED", "maybe")
	_, err := Load(New(), path)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "$CIS490_SERVE_GATE_UNSTAMPED: bad value for serve.gate.unstamped")
	assert.NotContains(t, err.Error(), path, "the file is not where the bad value came from")
}

func TestTOMLSyntaxErrorNamesFileAndLine(t *testing.T) {
	isolate(t)
	for _, tc := range []struct {
		name, body, at, want string
	}{
		{"unclosed table", "[serve.gate\nrefresh = \"1m\"\n", ":1:12:", "expected ']' to close table name"},
		{"missing value", "host = \"a\"\n[serve]\nlisten = \n", ":3:10:", "TOML syntax error"},
		{"duplicate key", "host = \"a\"\nhost = \"b\"\n", ":2:1:", "already defined"},
		{"not toml", "this is = = not toml", ":1:6:", "expected '='"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, tc.body)
			_, err := Load(New(), path)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "config "+path+tc.at)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "While parsing config")
		})
	}
}

func TestParseErrorWithoutPosition(t *testing.T) {
	err := parseError("/x/lab-host.toml", os.ErrPermission)
	assert.EqualError(t, err, "config /x/lab-host.toml: "+os.ErrPermission.Error())
}

func TestUnknownKeySuggestsTheKey(t *testing.T) {
	isolate(t)
	for _, tc := range []struct{ body, want string }{
		{"[serve]\nlistne = \"x\"\n", "unknown key serve.listne (did you mean serve.listen?)"},
		{"[receiver]\nulr = \"https://x\"\n", "unknown key receiver.ulr (did you mean receiver.url?)"},
		{"[gate]\nrefresh = \"1m\"\n", "unknown key gate.refresh (did you mean serve.gate.refresh?)"},
		{"[serve]\nzzz = 1\n", "unknown key serve.zzz; check its spelling"},
	} {
		_, err := Load(New(), writeConfig(t, tc.body))
		require.Error(t, err, tc.body)
		assert.Contains(t, err.Error(), tc.want)
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"abc", "abc", 0}, {"RECIEVER", "RECEIVER", 1}, {"LISTN", "LISTEN", 1}, {"kitten", "sitting", 3},
	} {
		assert.Equal(t, tc.want, editDistance(tc.a, tc.b), "%s/%s", tc.a, tc.b)
	}
}

func reflectDefault() reflect.Value { return reflect.ValueOf(Default()) }

func TestWholeNumbersSayWhatIsWrong(t *testing.T) {
	isolate(t)
	_, err := Load(New(), writeConfig(t, "[ship]\nretries = \"five\"\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `bad value for ship.retries: "five" is not a whole number`)
	assert.NotContains(t, err.Error(), "strconv")

	t.Setenv("CIS490_SHIP_RETRIES", " 7 ")
	cfg, err := Load(New(), "")
	require.NoError(t, err)
	assert.Equal(t, 7, cfg.Ship.Retries)
}

// Several bad values are all reported, sorted by key, each with where it came from:
// naming one picked at random (map order) sends the operator round in circles.
func TestSeveralBadValuesAreAllReportedInOrder(t *testing.T) {
	isolate(t)
	t.Setenv("CIS490_FLEET_HEALTH_SILENT_AFTER", "-30m")
	path := writeConfig(t, "[log]\nformat = \"loud\"\n[ship]\nmax_age = \"-1h\"\nkeep_sent = \"-2h\"\n[receiver]\ntimeout = \"0s\"\n"+
		"[serve.gate]\nunstamped = \"maybe\"\n")
	for range 5 {
		_, err := Load(New(), path)
		require.Error(t, err)
		msg := err.Error()
		var at []int
		for _, key := range []string{"fleet_health.silent_after", "log.format", "receiver.timeout", "serve.gate.unstamped", "ship.keep_sent", "ship.max_age"} {
			i := strings.Index(msg, "bad value for "+key)
			require.GreaterOrEqual(t, i, 0, "%s is not reported in:\n%s", key, msg)
			at = append(at, i)
		}
		assert.IsIncreasing(t, at, "sorted by key:\n%s", msg)
		assert.Contains(t, msg, "$CIS490_FLEET_HEALTH_SILENT_AFTER: bad value for fleet_health.silent_after")
		assert.Contains(t, msg, "config "+path+": bad value for ship.max_age")
	}
}

// Values that do not decode at all (bare numbers for durations) are all reported too.
func TestSeveralUndecodableValuesAreAllReported(t *testing.T) {
	isolate(t)
	path := writeConfig(t, "[receiver]\ntimeout = 30\n[serve.gate]\nrefresh = 60\n[doctor]\ntimeout = 1.5\n")
	for range 5 {
		_, err := Load(New(), path)
		require.Error(t, err)
		msg := err.Error()
		var at []int
		for _, key := range []string{"doctor.timeout", "receiver.timeout", "serve.gate.refresh"} {
			i := strings.Index(msg, key)
			require.GreaterOrEqual(t, i, 0, "%s is not reported in:\n%s", key, msg)
			at = append(at, i)
		}
		assert.IsIncreasing(t, at, "sorted by key:\n%s", msg)
	}
}

// The receiver's limits must be positive: caught when the configuration loads, for
// every command, not only when `serve` starts.
func TestReceiverLimitsMustBePositive(t *testing.T) {
	isolate(t)
	path := writeConfig(t, "[serve]\nmax_uploads = 0\nmax_uploads_per_host = -1\nmax_connections = 0\ndrain_timeout = \"0s\"\n")
	_, err := Load(New(), path)
	require.Error(t, err)
	for _, key := range []string{"serve.drain_timeout", "serve.max_connections", "serve.max_uploads", "serve.max_uploads_per_host"} {
		assert.Contains(t, err.Error(), "bad value for "+key)
	}
}
