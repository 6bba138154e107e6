package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/pelletier/go-toml/v2"
	"github.com/spf13/viper"

	"github.com/cis490/cis490/internal/logging"
	"github.com/cis490/cis490/internal/protocol"
)

// EnvPrefix starts every environment override: CIS490_<SECTION>_<KEY>.
const EnvPrefix = "CIS490"

// EnvConfig names the configuration file when --config is not given.
const EnvConfig = "CIS490_CONFIG"

// FileName is the configuration file's name in the searched folders.
const FileName = "lab-host.toml"

// New returns a Viper instance that knows every key, its default and its environment
// variable. Commands bind their flags to it, then call Load.
func New() *viper.Viper {
	v := viper.New()
	v.SetConfigType("toml")
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	// An empty variable is a value, not an absent one: CIS490_RECEIVER_CA_FILE= clears a
	// ca_file the file sets (back to the system's CAs), as `ca_file = ""` would. Without
	// this Viper skips empty variables and the file's value silently stays. Keys for
	// which empty means nothing are reported: non-string keys by checkEnv, the others
	// by check. To return to the file's value or the default, unset the variable.
	v.AllowEmptyEnv(true)
	for key, val := range leaves(reflect.ValueOf(Default()), "") {
		v.SetDefault(key, val)
	}
	return v
}

// SearchPaths lists where the file is looked for when no path is given, first match wins.
func SearchPaths() []string {
	paths := []string{filepath.Join("/etc/cis490", FileName)}
	xdg := os.Getenv("XDG_CONFIG_HOME")
	if xdg == "" {
		if home, err := os.UserHomeDir(); err == nil {
			xdg = filepath.Join(home, ".config")
		}
	}
	if xdg != "" {
		paths = append(paths, filepath.Join(xdg, "cis490", FileName))
	}
	return paths
}

// Load reads the configuration file (explicit, else $CIS490_CONFIG, else the first of
// SearchPaths that exists; none at all is fine), applies environment overrides and bound
// flags, and checks every value. Errors name the key and the file.
func Load(v *viper.Viper, explicit string) (Config, error) {
	path, err := findFile(explicit)
	if err != nil {
		return Config{}, err
	}
	if err := checkEnv(os.Environ()); err != nil {
		return Config{}, err
	}
	if path != "" {
		v.SetConfigFile(path)
		if err := v.ReadInConfig(); err != nil {
			return Config{}, parseError(path, err)
		}
		if err := checkKeys(v, path); err != nil {
			return Config{}, err
		}
	}
	cfg := Config{}
	err = v.Unmarshal(&cfg, viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(durationHook, sizeHook, intHook)))
	if err != nil {
		return Config{}, decodeError(err, path)
	}
	cfg.File = path
	if problems := cfg.check(); len(problems) > 0 {
		errs := make([]error, len(problems))
		for i, err := range problems {
			var bad *badValue
			if errors.As(err, &bad) {
				errs[i] = fmt.Errorf("%s: %w", source(bad.key, path), err)
			} else {
				errs[i] = fmt.Errorf("%s: %w", where(path), err)
			}
		}
		return Config{}, problemList(errs)
	}
	return cfg, nil
}

// parseError names the file, line and column of a TOML syntax error; Viper's own
// message ("While parsing config: toml: expected ']' ...") names neither.
func parseError(path string, err error) error {
	var de *toml.DecodeError
	if errors.As(err, &de) {
		if row, col := de.Position(); row > 0 {
			return fmt.Errorf("config %s:%d:%d: TOML syntax error: %s", path, row, col, strings.TrimPrefix(de.Error(), "toml: "))
		}
	}
	return fmt.Errorf("config %s: %w", path, err)
}

func findFile(explicit string) (string, error) {
	from := "--config"
	if explicit == "" {
		explicit, from = os.Getenv(EnvConfig), "$"+EnvConfig
	}
	if explicit != "" {
		if _, err := os.Stat(explicit); err != nil {
			return "", fmt.Errorf("config file %s (from %s): %w", explicit, from, err)
		}
		return explicit, nil
	}
	for _, p := range SearchPaths() {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("config file %s: %w", p, err)
		}
	}
	return "", nil
}

// checkKeys reports keys in the file that the schema does not have: a typo such as
// `listne` would otherwise be silently ignored and the default used.
func checkKeys(v *viper.Viper, path string) error {
	known := leaves(reflect.ValueOf(Default()), "")
	keys := make([]string, 0, len(known))
	for k := range known {
		keys = append(keys, k)
	}
	var unknown []string
	for _, k := range v.AllKeys() {
		if _, ok := known[k]; !ok {
			unknown = append(unknown, "unknown key "+k+didYouMean(suggest(k, keys, ".")))
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	return fmt.Errorf("config %s: %s; check its spelling and the [section] it is in; the README lists every key",
		path, strings.Join(unknown, "; "))
}

// decodeError reports every value that did not decode, sorted by key: mapstructure
// joins one error per field, in map order.
func decodeError(err error, path string) error {
	leaves := decodeLeaves(err)
	if len(leaves) == 0 {
		return fmt.Errorf("%s: %w", where(path), err)
	}
	sort.Slice(leaves, func(i, j int) bool { return leaves[i].Name() < leaves[j].Name() })
	errs := make([]error, len(leaves))
	for i, de := range leaves {
		errs[i] = fmt.Errorf("%s: bad value for %s: %v", source(de.Name(), path), de.Name(), de.Unwrap())
	}
	return problemList(errs)
}

// decodeLeaves finds the innermost decode errors in err's tree: those that name the
// key whose value is bad rather than a section holding it.
func decodeLeaves(err error) []*mapstructure.DecodeError {
	var out []*mapstructure.DecodeError
	switch e := err.(type) {
	case *mapstructure.DecodeError:
		if inner := decodeLeaves(e.Unwrap()); len(inner) > 0 {
			return inner
		}
		return []*mapstructure.DecodeError{e}
	case interface{ Unwrap() []error }:
		for _, err := range e.Unwrap() {
			out = append(out, decodeLeaves(err)...)
		}
	case interface{ Unwrap() error }:
		return decodeLeaves(e.Unwrap())
	}
	return out
}

// envName is the environment variable that overrides key: serve.gate.refresh is
// CIS490_SERVE_GATE_REFRESH.
func envName(key string) string {
	return EnvPrefix + "_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// source says where key's value came from: its environment variable when that is set
// (even empty, see AllowEmptyEnv in New), else the file or the defaults.
func source(key, path string) string {
	if _, ok := os.LookupEnv(envName(key)); ok {
		return "$" + envName(key)
	}
	return where(path)
}

// badValue is a check failure that belongs to one key, so Load can name the key's
// environment variable rather than the file when the value came from there.
type badValue struct{ key, msg string }

func (e *badValue) Error() string { return "bad value for " + e.key + ": " + e.msg }

func bad(key, format string, args ...any) error {
	return &badValue{key: key, msg: fmt.Sprintf(format, args...)}
}

func where(path string) string {
	if path == "" {
		return "config (defaults and environment)"
	}
	return "config " + path
}

// leaves maps every key of the schema ("serve.gate.refresh") to its default value.
func leaves(v reflect.Value, prefix string) map[string]any {
	out := map[string]any{}
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("mapstructure")
		if tag == "" || tag == "-" {
			continue
		}
		key := prefix + tag
		f := v.Field(i)
		if f.Kind() == reflect.Struct {
			for k, val := range leaves(f, key+".") {
				out[k] = val
			}
			continue
		}
		out[key] = f.Interface()
	}
	return out
}

var (
	durationType = reflect.TypeOf(time.Duration(0))
	sizeType     = reflect.TypeOf(ByteSize(0))
)

// durationHook reads durations. A bare number is refused: mapstructure would take
// `refresh = 60` (or CIS490_SERVE_GATE_REFRESH=60) as 60 nanoseconds, and the receiver
// would reload its gate without pause. Zero alone is let through, since 0 is the same
// in every unit; no duration key takes 0 today (check requires every one to be
// positive, which also rejects negative ones such as "-5s"), so it is then reported as
// "must be positive", and a key that one day means "off" by 0 would work unchanged.
func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != durationType || from == durationType {
		return data, nil
	}
	val := reflect.ValueOf(data)
	switch from.Kind() {
	case reflect.String:
		s := strings.TrimSpace(val.String())
		if bareNumber.MatchString(s) {
			if f, err := strconv.ParseFloat(s, 64); err == nil && f == 0 {
				return time.Duration(0), nil
			}
			return nil, needsUnit(s)
		}
		return ParseDuration(val.String())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		if val.IsZero() {
			return time.Duration(0), nil
		}
		return nil, needsUnit(fmt.Sprint(data))
	}
	return data, nil
}

// intHook reads whole numbers given as text (from the environment, or quoted in the
// file), saying what is wrong instead of passing on strconv's "invalid syntax".
func intHook(from, to reflect.Type, data any) (any, error) {
	if from.Kind() != reflect.String || to == durationType || to.Kind() != reflect.Int {
		return data, nil
	}
	s := strings.TrimSpace(reflect.ValueOf(data).String())
	n, err := strconv.Atoi(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a whole number", s)
	}
	return n, nil
}

var bareNumber = regexp.MustCompile(`^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$`)

func needsUnit(n string) error {
	return fmt.Errorf(`%s is a bare number: a duration needs a unit, e.g. "60s" or "1m"`, n)
}

func sizeHook(from, to reflect.Type, data any) (any, error) {
	if to != sizeType || from.Kind() != reflect.String {
		return data, nil
	}
	return ParseByteSize(data.(string))
}

// check validates the values and normalises the host name. It returns every problem,
// sorted by key (the ones that span keys last), so that one run of the command shows
// the operator all there is to fix.
func (c *Config) check() []error {
	var problems []error
	add := func(err error) { problems = append(problems, err) }
	if host, ok := protocol.NormalizeHost(c.Host); ok {
		c.Host = host
	} else {
		add(bad("host", "%q is not an RFC 1123 host name (ASCII letters, digits, hyphens, dots)", c.Host))
	}
	if _, err := logging.ParseLevel(c.Log.Level); err != nil {
		add(bad("log.level", "%v", err))
	}
	switch c.Log.Format {
	case logging.FormatAuto, logging.FormatConsole, logging.FormatJSON:
	default:
		add(bad("log.format", "%q (use auto, console or json)", c.Log.Format))
	}
	if c.Receiver.URL != "" {
		u, err := url.Parse(c.Receiver.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add(bad("receiver.url", "%q (want https://pi.example:8490)", c.Receiver.URL))
		}
	}
	for key, raw := range map[string]string{
		"fleet_health.alertmanager_url": c.FleetHealth.AlertmanagerURL, "fleet_health.webhook_url": c.FleetHealth.WebhookURL,
	} {
		if raw == "" {
			continue
		}
		if u, err := url.Parse(raw); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add(bad(key, "%q (want an http:// or https:// URL)", raw))
		}
	}
	switch c.Serve.Gate.Unstamped {
	case UnstampedAllow, UnstampedReject:
	default:
		add(bad("serve.gate.unstamped", "%q (use allow or reject)", c.Serve.Gate.Unstamped))
	}
	if (c.Serve.TLS.CertFile == "") != (c.Serve.TLS.KeyFile == "") {
		add(errors.New("serve.tls.cert_file and serve.tls.key_file go together: set both or neither"))
	}
	if c.Serve.TLS.ClientCAFile != "" && c.Serve.TLS.CertFile == "" {
		add(errors.New("serve.tls.client_ca_file needs serve.tls.cert_file and key_file: client certificates only exist over TLS"))
	}
	if c.Serve.DataDir == "" {
		add(bad("serve.data_dir", "empty"))
	}
	problems = append(problems, c.Serve.CA.check()...)
	problems = append(problems, c.Serve.checkStorage()...)
	problems = append(problems, c.checkUpdate()...)
	if c.Ship.SpoolDir == "" {
		add(bad("ship.spool_dir", "empty"))
	}
	for key, d := range map[string]time.Duration{
		"receiver.timeout": c.Receiver.Timeout, "serve.gate.refresh": c.Serve.Gate.Refresh,
		"fleet_health.silent_after": c.FleetHealth.SilentAfter, "fleet_health.active_window": c.FleetHealth.ActiveWindow,
		"fleet_health.fatal_window": c.FleetHealth.FatalWindow, "fleet_health.report_stale_after": c.FleetHealth.ReportStaleAfter,
		"fleet_health.repeat_interval": c.FleetHealth.RepeatInterval, "fleet_health.push_timeout": c.FleetHealth.PushTimeout,
		"fleet_health.gone_repeat_interval": c.FleetHealth.GoneRepeatInterval, "fleet_health.gate_stale_after": c.FleetHealth.GateStaleAfter,
		"fleet_health.max_silence": c.FleetHealth.MaxSilence, "doctor.timeout": c.Doctor.Timeout,
		"serve.drain_timeout": c.Serve.DrainTimeout, "serve.partial_ttl": c.Serve.PartialTTL,
		"ship.max_age": c.Ship.MaxAge, "ship.keep_sent": c.Ship.KeepSent,
	} {
		if d <= 0 {
			add(bad(key, "%v (must be positive)", d))
		}
	}
	for key, n := range map[string]int64{
		"serve.gate.git_depth": int64(c.Serve.Gate.GitDepth), "serve.max_episode_bytes": int64(c.Serve.MaxEpisodeBytes),
		"serve.max_report_bytes": int64(c.Serve.MaxReportBytes), "fleet_health.fatal_min_requests": int64(c.FleetHealth.FatalMinRequests),
		"serve.max_uploads": int64(c.Serve.MaxUploads), "serve.max_uploads_per_host": int64(c.Serve.MaxUploadsPerHost),
		"serve.max_connections": int64(c.Serve.MaxConnections),
	} {
		if n <= 0 {
			add(bad(key, "%d (must be positive)", n))
		}
	}
	if c.Ship.Retries < 0 {
		add(bad("ship.retries", "%d (must be 0 or more)", c.Ship.Retries))
	}
	if c.Serve.MinFreeBytes < 0 {
		add(bad("serve.min_free_bytes", "%d (must be 0 or more)", c.Serve.MinFreeBytes))
	}
	sort.SliceStable(problems, func(i, j int) bool { return problemKey(problems[i]) < problemKey(problems[j]) })
	return problems
}

// problemList is several configuration problems as one error on one line, the way
// doctor's config check and every command's error line show it.
type problemList []error

func (p problemList) Error() string {
	msgs := make([]string, len(p))
	for i, err := range p {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (p problemList) Unwrap() []error { return p }

// problemKey orders check's problems: by key, and those of no one key after them.
func problemKey(err error) string {
	var b *badValue
	if errors.As(err, &b) {
		return b.key
	}
	return "\xff"
}
