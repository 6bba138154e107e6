package config

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"
)

// notSettings are the CIS490_ variables that are not lab-host.toml keys, so checkEnv
// lets them be. Anything else named CIS490_* that matches no key is a typo and an
// error, as an unknown key in the file is. A new variable of this kind must be added
// here (grep the repository for CIS490_ to find them).
var notSettings = map[string]string{
	EnvConfig: "the configuration file (findFile)",
	// Cobra reads <PROGRAM>_ACTIVE_HELP and <PROGRAM>_COMPLETION_DESCRIPTIONS; the
	// generated completion scripts (completions/) run `cis490 __complete` with
	// CIS490_ACTIVE_HELP=0.
	"CIS490_ACTIVE_HELP":             "Cobra: active help in shell completion",
	"CIS490_COMPLETION_DESCRIPTIONS": "Cobra: descriptions in shell completion",
	// bench/upload sets it when it re-executes itself under taskset.
	"CIS490_BENCH_PINNED": "bench/upload: already pinned to a CPU",
	// .ci/run sets it for go test; internal/store's tests then fail rather than skip
	// when the temp folder does not take O_DIRECT.
	"CIS490_TEST_REQUIRE_DIRECT_IO": "internal/store tests: require O_DIRECT",
	// cis490 release keygen and sign read the signing key's password from it.
	"CIS490_RELEASE_PASSWORD": "cis490 release: the signing key's password",
	// internal/e2e moves the receiver's CA clock with it (ca.EnvClockOffset).
	"CIS490_TEST_CLOCK_OFFSET": "internal/e2e: the receiver's CA clock, moved",
	// .ci/install-versitygw puts versitygw there; the S3 tests start it.
	"CIS490_VERSITYGW": "internal/objstore, receiver and e2e tests: the versitygw binary",
	// .ci/seaweedfs-test names the S3 server it started (objstoretest.External).
	"CIS490_S3_ENDPOINT":   "S3 tests: another server's endpoint",
	"CIS490_S3_ACCESS_KEY": "S3 tests: its access key",
	"CIS490_S3_SECRET_KEY": "S3 tests: its secret key",
	"CIS490_S3_REGION":     "S3 tests: its region",
	"CIS490_S3_NAME":       "S3 tests: its name",
	// .ci/seaweedfs-test starts weed mini on the ports from this one up.
	"CIS490_WEED_PORT_BASE": "the SeaweedFS job: its first port",
	// internal/e2e's browser tests run the Chromium it names instead of /usr/bin/chromium.
	"CIS490_CHROMIUM": "internal/e2e browser tests: the Chromium binary",
}

// guarded are the keys an empty variable must not clear: an unset ${VAR} in a
// compose file or script yields exactly that, and clearing one of these turns a
// safeguard off without a word. Other text keys may be cleared that way.
var guarded = map[string]string{
	"serve.tokens_file":         "authentication (open mode)",
	"serve.tls.cert_file":       "TLS",
	"serve.tls.key_file":        "TLS",
	"serve.tls.client_ca_file":  "mutual TLS",
	"serve.gate.allowlist_file": "a source of the version gate",
	"serve.gate.git_dir":        "a source of the version gate",
}

// checkEnv reports CIS490_ variables that name no key (CIS490_SERVE_LISTN would
// otherwise be silently ignored and the default used), and empty ones for keys where
// empty means nothing (a duration, size, number or boolean). environ is os.Environ().
func checkEnv(environ []string) error {
	known := leaves(reflect.ValueOf(Default()), "")
	keyOf := make(map[string]string, len(known))
	names := make([]string, 0, len(known)+len(notSettings))
	for k := range known {
		keyOf[envName(k)] = k
		names = append(names, strings.TrimPrefix(envName(k), EnvPrefix+"_"))
	}
	for n := range notSettings {
		names = append(names, strings.TrimPrefix(n, EnvPrefix+"_"))
	}
	var problems []string
	for _, kv := range environ {
		name, val, _ := strings.Cut(kv, "=")
		rest, ok := strings.CutPrefix(name, EnvPrefix+"_")
		if !ok {
			continue
		}
		if _, ok := notSettings[name]; ok {
			continue
		}
		key, ok := keyOf[name]
		if !ok {
			var hint []string
			for _, s := range suggest(rest, names, "_") {
				hint = append(hint, EnvPrefix+"_"+s)
			}
			problems = append(problems, name+" is not a setting"+didYouMean(hint))
			continue
		}
		if val == "" {
			if off, ok := guarded[key]; ok {
				problems = append(problems, fmt.Sprintf("%s is empty, which would turn off %s; unset the variable to keep the file's value, or remove %s from the file", name, off, key))
				continue
			}
			if want := takes(known[key]); want != "" {
				problems = append(problems, fmt.Sprintf("%s is empty, but %s takes %s; unset the variable to use the file's value or the default", name, key, want))
			}
		}
	}
	if len(problems) == 0 {
		return nil
	}
	sort.Strings(problems)
	return fmt.Errorf("environment: %s (the README lists every key; CIS490_<SECTION>_<KEY> overrides it)", strings.Join(problems, "; "))
}

// takes describes the values of a key whose default is def, "" for a string key (for
// which an empty variable clears the key).
func takes(def any) string {
	switch def.(type) {
	case string:
		return ""
	case time.Duration:
		return `a duration such as "30s" or "14d"`
	case ByteSize:
		return `a size such as "512MiB"`
	case bool:
		return "true or false"
	default:
		return "a number"
	}
}

func didYouMean(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return " (did you mean " + s[0] + "?)"
	default:
		return " (did you mean " + strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1] + "?)"
	}
}

// suggest returns the candidates closest to a misspelt name: those within a few edits
// of it, else those it is the tail of (a missing section: "gate.refresh" for
// "serve.gate.refresh", with sep "."). At most three, sorted.
func suggest(name string, candidates []string, sep string) []string {
	limit := min(max(1, len(name)/4), 3)
	best, out := limit+1, []string(nil)
	for _, c := range candidates {
		switch d := editDistance(strings.ToLower(name), strings.ToLower(c)); {
		case d < best:
			best, out = d, []string{c}
		case d == best:
			out = append(out, c)
		}
	}
	if out == nil {
		for _, c := range candidates {
			if strings.HasSuffix(strings.ToLower(c), strings.ToLower(sep+name)) {
				out = append(out, c)
			}
		}
	}
	sort.Strings(out)
	if len(out) > 3 {
		out = out[:3]
	}
	return out
}

// editDistance counts the insertions, deletions, substitutions and swaps of adjacent
// letters that turn a into b (optimal string alignment), so "RECIEVER" is 1 from
// "RECEIVER".
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
