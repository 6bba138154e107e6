package config

import (
	"os"
	"reflect"
	"strings"

	"github.com/spf13/viper"
)

// Sections lists the tables ("serve", "receiver", …) in which the configuration sets
// at least one key, in the file or through a CIS490_* variable, once Load has read v.
// A header alone does not count: the skeleton `cis490 install` writes has every
// header and every key commented out. Doctor picks its role by it (SPEC §4.3: [serve]
// without [receiver] is the Pi).
func Sections(v *viper.Viper) map[string]bool {
	out := map[string]bool{}
	for key := range leaves(reflect.ValueOf(Default()), "") {
		section, _, nested := strings.Cut(key, ".")
		if !nested || out[section] {
			continue
		}
		if _, inEnv := os.LookupEnv(envName(key)); inEnv || v.InConfig(key) {
			out[section] = true
		}
	}
	return out
}
