package install

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// Summary is what a run changed (or, with --dry-run, would change).
type Summary struct {
	Changed int
}

// reporter applies steps and prints one line for each: what it did, or what it
// would do under --dry-run.
type reporter struct {
	out    io.Writer
	dryRun bool
	root   string
	sum    Summary
	// changed is what each step that changed something did.
	changed map[step]action
}

var (
	doneWords  = map[action]string{unchanged: "unchanged", create: "created", update: "updated", keep: "kept", remove: "removed"}
	dryRunWord = map[action]string{unchanged: "unchanged", create: "would create", update: "would update", keep: "would keep", remove: "would remove"}
)

func (r *reporter) header(role string) {
	where := "on this machine"
	if r.root != "" {
		where = "under " + r.root
	}
	if r.dryRun {
		where += " (dry run: nothing is changed)"
	}
	fmt.Fprintf(r.out, "cis490 install %s %s\n", role, where)
}

func (r *reporter) do(s step) error {
	c, err := s.check()
	if err != nil {
		return err
	}
	if c.action == create || c.action == update || c.action == remove {
		if !r.dryRun {
			if err := s.apply(c); err != nil {
				return fmt.Errorf("%s: %w", c.target, err)
			}
		}
		r.sum.Changed++
		if r.changed == nil {
			r.changed = map[step]action{}
		}
		r.changed[s] = c.action
	}
	// Under --root, paths are shown as they will be on the target.
	target := c.target
	if rel, err := filepath.Rel(r.root, target); r.root != "" && err == nil {
		target = "/" + rel
	}
	r.line(r.word(c.action), target, c.detail)
	return nil
}

func (r *reporter) word(a action) string {
	if r.dryRun {
		return dryRunWord[a]
	}
	return doneWords[a]
}

// line prints one step: "  created       /etc/cis490  (folder 0755)".
func (r *reporter) line(word, target, detail string) {
	if detail != "" {
		detail = "  (" + detail + ")"
	}
	fmt.Fprintf(r.out, "  %-13s %s%s\n", word, target, detail)
}

// systemd records a systemctl action: done is its wording after the fact, dry under
// --dry-run.
func (r *reporter) systemd(done, dry, target, detail string) {
	r.sum.Changed++
	if r.dryRun {
		done = dry
	}
	r.line(done, target, detail)
}

func (r *reporter) note(s string) { fmt.Fprintf(r.out, "  note: %s\n", s) }

func (r *reporter) notes(ns []string) {
	for _, n := range ns {
		r.note(n)
	}
}

func (r *reporter) footer(role string) {
	switch {
	case r.sum.Changed == 0:
		fmt.Fprintf(r.out, "nothing to change: the %s is installed\n", role)
	case r.dryRun:
		fmt.Fprintf(r.out, "%d changes to make; run again without --dry-run to make them\n", r.sum.Changed)
	default:
		fmt.Fprintf(r.out, "%d changes made; a second run changes nothing\n", r.sum.Changed)
	}
}

func join(units []string) string { return strings.Join(units, " ") }
