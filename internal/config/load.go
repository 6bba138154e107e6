package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
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
	if path != "" {
		v.SetConfigFile(path)
		if err := v.ReadInConfig(); err != nil {
			return Config{}, fmt.Errorf("config %s: %w", path, err)
		}
		if err := checkKeys(v, path); err != nil {
			return Config{}, err
		}
	}
	cfg := Config{}
	err = v.Unmarshal(&cfg, viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(durationHook, sizeHook)))
	if err != nil {
		return Config{}, decodeError(err, path)
	}
	cfg.File = path
	if err := cfg.check(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", where(path), err)
	}
	return cfg, nil
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
	var unknown []string
	for _, k := range v.AllKeys() {
		if _, ok := known[k]; !ok {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	return fmt.Errorf("config %s: unknown key %s (check its spelling and the [section] it is in; the README lists every key)",
		path, strings.Join(unknown, ", "))
}

func decodeError(err error, path string) error {
	var de *mapstructure.DecodeError
	if errors.As(err, &de) {
		key := de.Name()
		env := EnvPrefix + "_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
		src := where(path)
		if _, ok := os.LookupEnv(env); ok {
			src = "$" + env
		}
		return fmt.Errorf("%s: bad value for %s: %v", src, key, de.Unwrap())
	}
	return fmt.Errorf("%s: %w", where(path), err)
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

func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != durationType || from.Kind() != reflect.String {
		return data, nil
	}
	return ParseDuration(data.(string))
}

func sizeHook(from, to reflect.Type, data any) (any, error) {
	if to != sizeType || from.Kind() != reflect.String {
		return data, nil
	}
	return ParseByteSize(data.(string))
}

func (c *Config) check() error {
	host, ok := protocol.NormalizeHost(c.Host)
	if !ok {
		return fmt.Errorf("bad value for host: %q is not an RFC 1123 host name (letters, digits, hyphens, dots)", c.Host)
	}
	c.Host = host
	if _, err := logging.ParseLevel(c.Log.Level); err != nil {
		return fmt.Errorf("bad value for log.level: %w", err)
	}
	switch c.Log.Format {
	case logging.FormatAuto, logging.FormatConsole, logging.FormatJSON:
	default:
		return fmt.Errorf("bad value for log.format: %q (use auto, console or json)", c.Log.Format)
	}
	if c.Receiver.URL != "" {
		u, err := url.Parse(c.Receiver.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("bad value for receiver.url: %q (want https://pi.example:8490)", c.Receiver.URL)
		}
	}
	for key, raw := range map[string]string{
		"fleet_health.alertmanager_url": c.FleetHealth.AlertmanagerURL, "fleet_health.webhook_url": c.FleetHealth.WebhookURL,
	} {
		if raw == "" {
			continue
		}
		if u, err := url.Parse(raw); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("bad value for %s: %q (want an http:// or https:// URL)", key, raw)
		}
	}
	switch c.Serve.Gate.Unstamped {
	case UnstampedAllow, UnstampedReject:
	default:
		return fmt.Errorf("bad value for serve.gate.unstamped: %q (use allow or reject)", c.Serve.Gate.Unstamped)
	}
	if (c.Serve.TLS.CertFile == "") != (c.Serve.TLS.KeyFile == "") {
		return errors.New("serve.tls.cert_file and serve.tls.key_file go together: set both or neither")
	}
	if c.Serve.TLS.ClientCAFile != "" && c.Serve.TLS.CertFile == "" {
		return errors.New("serve.tls.client_ca_file needs serve.tls.cert_file and key_file: client certificates only exist over TLS")
	}
	if c.Serve.DataDir == "" {
		return errors.New("bad value for serve.data_dir: empty")
	}
	for key, d := range map[string]time.Duration{
		"receiver.timeout": c.Receiver.Timeout, "serve.gate.refresh": c.Serve.Gate.Refresh,
		"fleet_health.silent_after": c.FleetHealth.SilentAfter, "fleet_health.active_window": c.FleetHealth.ActiveWindow,
		"fleet_health.fatal_window": c.FleetHealth.FatalWindow, "fleet_health.report_stale_after": c.FleetHealth.ReportStaleAfter,
		"fleet_health.repeat_interval": c.FleetHealth.RepeatInterval, "fleet_health.push_timeout": c.FleetHealth.PushTimeout,
		"doctor.timeout": c.Doctor.Timeout, "ship.max_age": c.Ship.MaxAge, "ship.keep_sent": c.Ship.KeepSent,
	} {
		if d <= 0 {
			return fmt.Errorf("bad value for %s: %v (must be positive)", key, d)
		}
	}
	for key, n := range map[string]int64{
		"serve.gate.git_depth": int64(c.Serve.Gate.GitDepth), "serve.max_episode_bytes": int64(c.Serve.MaxEpisodeBytes),
		"serve.max_report_bytes": int64(c.Serve.MaxReportBytes), "fleet_health.fatal_min_requests": int64(c.FleetHealth.FatalMinRequests),
	} {
		if n <= 0 {
			return fmt.Errorf("bad value for %s: %d (must be positive)", key, n)
		}
	}
	if c.Ship.Retries < 0 {
		return fmt.Errorf("bad value for ship.retries: %d (must be 0 or more)", c.Ship.Retries)
	}
	if c.Serve.MinFreeBytes < 0 {
		return fmt.Errorf("bad value for serve.min_free_bytes: %d (must be 0 or more)", c.Serve.MinFreeBytes)
	}
	return nil
}
