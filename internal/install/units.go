package install

import (
	"bytes"
	"errors"
	"io/fs"
	"os"

	"github.com/cis490/cis490/systemd"
)

// unitStep is a unit file in UnitDir, unless the cis490 package provides the same
// unit in systemd.PackageUnitDir. A copy in UnitDir overrides the package's, so it
// would hide the package's next upgrade: install then writes none, and removes the
// one it wrote before the package came (a copy that equals the package's). A package
// whose units differ from this binary's gets this binary's in UnitDir, as without
// a package.
type unitStep struct {
	file fileStep // the copy in UnitDir
	pkg  string   // the package's
}

const byPackage = "provided by the cis490 package"

func (s *unitStep) check() (change, error) {
	pkg, err := os.ReadFile(s.pkg)
	if err != nil || !bytes.Equal(pkg, s.file.data) {
		return s.file.check()
	}
	fi, err := os.Lstat(s.file.path)
	if errors.Is(err, fs.ErrNotExist) {
		return change{action: unchanged, target: s.pkg, detail: byPackage}, nil
	}
	if err != nil || !fi.Mode().IsRegular() {
		return s.file.check() // says what is wrong with it
	}
	old, err := os.ReadFile(s.file.path)
	if err != nil {
		return change{}, err
	}
	c := change{action: remove, target: s.file.path,
		detail: byPackage + " in " + systemd.PackageUnitDir + "; this copy would hide its upgrades"}
	if !bytes.Equal(old, s.file.data) {
		c.action = keep
		c.detail = "overrides the cis490 package's unit: if an older cis490 install wrote it, remove it and run systemctl daemon-reload; change a unit with systemctl edit"
	}
	return c, nil
}

func (s *unitStep) apply(c change) error {
	if c.action == remove {
		return os.Remove(s.file.path)
	}
	return s.file.apply(c)
}
