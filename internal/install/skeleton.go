package install

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cis490/cis490/internal/config"
)

// ExampleHost stands in for the host key's default, which is each machine's own
// name: the skeleton must read the same on every machine (the .deb ships it).
const ExampleHost = "lab-07"

// Key is one key of lab-host.toml: its dotted name, what it does (the schema's help
// tag), and the value shown for it.
type Key struct {
	Name  string
	Help  string
	Value any
}

// shownDefaults are the defaults as a service sees them: the data folder is the
// unit's StateDirectory, whoever runs install.
func shownDefaults() config.Config {
	cfg := config.Default()
	cfg.Host = ExampleHost
	cfg.Serve.DataDir = StateDir
	return cfg
}

// Keys lists every key of the schema in file order, with its help line and default.
func Keys() []Key {
	var keys []Key
	walk(reflect.ValueOf(shownDefaults()), "", func(name, help string, v reflect.Value) {
		if v.Kind() != reflect.Struct {
			keys = append(keys, Key{Name: name, Help: help, Value: v.Interface()})
		}
	})
	return keys
}

// Tables lists the schema's tables ("log", "serve", "serve.tls", …) in file order, each
// with its help line; Value is unset. The lab-host.toml(5) page groups Keys by them.
func Tables() []Key {
	var tables []Key
	walk(reflect.ValueOf(shownDefaults()), "", func(name, help string, v reflect.Value) {
		if v.Kind() == reflect.Struct {
			tables = append(tables, Key{Name: name, Help: help})
		}
	})
	return tables
}

// TOML is the key's value as the skeleton writes it ("30d", "512MiB", true).
func (k Key) TOML() string { return tomlValue(k.Value) }

// Env is the environment variable that overrides the key: CIS490_<SECTION>_<KEY>, the
// dotted name in capitals with dots as underscores (config.New's replacer).
func (k Key) Env() string {
	return config.EnvPrefix + "_" + strings.ToUpper(strings.ReplaceAll(k.Name, ".", "_"))
}

// walk visits the fields that are keys (those with a mapstructure tag), a table's
// plain keys before its sub-tables, as TOML requires.
func walk(v reflect.Value, prefix string, visit func(name, help string, v reflect.Value)) {
	t := v.Type()
	for _, tables := range []bool{false, true} {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("mapstructure")
			if tag == "" || tag == "-" || (f.Type.Kind() == reflect.Struct) != tables {
				continue
			}
			visit(prefix+tag, f.Tag.Get("help"), v.Field(i))
			if tables {
				walk(v.Field(i), prefix+tag+".", visit)
			}
		}
	}
}

const skeletonHeader = `# lab-host.toml: the configuration of every cis490 command, on lab hosts and on the
# receiver alike. Every key is listed with its default, commented out: uncomment a
# line to change it. An unknown key is an error, so a typo cannot go unnoticed.
# Any key can also be set in the environment: CIS490_<SECTION>_<KEY>, for example
# CIS490_RECEIVER_URL. Durations take Go syntax plus days (30m, 36h, 14d); sizes take
# bytes or units (512MiB, 4GB). See cis490(1).
`

// Skeleton renders lab-host.toml with every key, its default and one line on what it
// does, all commented out; the keys in set are written uncommented with the given
// value (install sets receiver.token_file when it stores a token).
func Skeleton(set map[string]any) []byte {
	var b strings.Builder
	b.WriteString(skeletonHeader)
	walk(reflect.ValueOf(shownDefaults()), "", func(name, help string, v reflect.Value) {
		b.WriteString("\n# " + help + "\n")
		if v.Kind() == reflect.Struct {
			// Headers stay uncommented, so that uncommenting a key is enough.
			b.WriteString("[" + name + "]\n")
			return
		}
		val, ok := set[name]
		prefix := "#"
		if ok {
			prefix = ""
		} else {
			val = v.Interface()
		}
		short := name[strings.LastIndex(name, ".")+1:]
		b.WriteString(prefix + short + " = " + tomlValue(val) + "\n")
	})
	return []byte(b.String())
}

func tomlValue(v any) string {
	switch v := v.(type) {
	case string:
		return tomlString(v)
	case time.Duration:
		return tomlString(formatDuration(v))
	case config.ByteSize:
		return tomlString(v.String())
	case int:
		return strconv.Itoa(v)
	case bool:
		return strconv.FormatBool(v)
	}
	panic(fmt.Sprintf("lab-host.toml skeleton: no TOML form for %T", v))
}

// tomlString is a TOML basic string: quotes, backslashes and control characters escaped.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// formatDuration writes durations the way a person would in the file: "30d", "36h",
// "30m" (not "720h0m0s", "36h0m0s", "30m0s").
func formatDuration(d time.Duration) string {
	const day = 24 * time.Hour
	if d >= 2*day && d%day == 0 {
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// keyNames is the sorted list of the schema's keys; tests compare it with Viper's.
func keyNames() []string {
	var names []string
	for _, k := range Keys() {
		names = append(names, k.Name)
	}
	sort.Strings(names)
	return names
}
