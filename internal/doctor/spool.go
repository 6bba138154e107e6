package doctor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cis490/cis490/internal/spool"
)

// stuckAfter is when a queued episode counts as stuck: ship runs every 5 minutes, so
// an hour means a dozen runs did not move it.
const stuckAfter = time.Hour

func checkSpool(dir string, now time.Time) Check {
	sp := spool.New(dir)
	details := map[string]any{"spool_dir": dir}
	if p := sp.Problem(); p != nil { // missing, or read-only: what ship says too
		return failed(p.Summary(), p.Hint(), details)
	}
	var broken []string
	for _, sub := range []string{spool.Outbox, spool.Sent, spool.Rejected} {
		if err := writable(sp.Path(sub)); err != nil {
			broken = append(broken, sub+"/ "+err.Error())
		}
	}
	if len(broken) > 0 {
		return failed("spool "+dir+": "+strings.Join(broken, "; "),
			"create the spool folders, writable by the user cis490-ship runs as: `cis490 install lab-host` "+
				"(or `install -d "+filepath.Join(dir, "{outbox,sent,rejected}")+"`); ship.spool_dir in lab-host.toml says where", details)
	}
	all, err := sp.List(spool.Outbox)
	if err != nil {
		return failed("cannot list "+sp.Path(spool.Outbox)+": "+err.Error(), "check the permissions of "+sp.Path(spool.Outbox), details)
	}
	queue := episodes(all)
	rejectedFiles, err := sp.List(spool.Rejected)
	if err != nil {
		return failed("cannot list "+sp.Path(spool.Rejected)+": "+err.Error(), "check the permissions of "+sp.Path(spool.Rejected), details)
	}
	rejected := len(episodes(rejectedFiles))
	details["queue_depth"], details["in_progress"], details["rejected"] = len(queue), len(all)-len(queue), rejected

	summary := fmt.Sprintf("%d queued", len(queue))
	var age time.Duration
	if len(queue) > 0 {
		age = now.Sub(queue[0].ModTime) // List sorts oldest first
		details["oldest_age_seconds"] = age.Round(time.Second).Seconds()
		summary += fmt.Sprintf(" (oldest %s)", age.Round(time.Second))
	}
	var problems, hints []string
	strays, err := sp.Strays()
	if err != nil {
		return failed("cannot list "+sp.Path(spool.Outbox)+": "+err.Error(), "check the permissions of "+sp.Path(spool.Outbox), details)
	}
	if len(strays) > 0 {
		details["unshippable"] = len(strays)
		names := make([]string, len(strays))
		for i, st := range strays {
			names[i] = st.Name + ": " + st.Kind
		}
		problems = append(problems, fmt.Sprintf("%d in outbox/ that ship never sends (%s)", len(strays), strings.Join(names, ", ")))
		hints = append(hints, "every ship run fails while they are there: move the files themselves into outbox/ (`mv`, not `ln -s`) or remove them")
	}
	if age > stuckAfter {
		problems = append(problems, fmt.Sprintf("the oldest queued episode has waited %s", age.Round(time.Minute)))
		hints = append(hints, "run `cis490 ship` and read what it says (and `systemctl status cis490-ship.timer`)")
	}
	if rejected > 0 {
		problems = append(problems, fmt.Sprintf("%d in rejected/", rejected))
		hints = append(hints, "read the "+spool.ReasonSuffix+" file beside each episode in "+sp.Path(spool.Rejected)+
			", fix the cause, then move the episode back to outbox/ or delete it")
	}
	if len(problems) > 0 {
		return warned(summary+"; "+strings.Join(problems, "; "), strings.Join(hints, "; "), details)
	}
	return ok(summary+", nothing rejected", details)
}

// episodes drops what is not an episode: files still being written, and the
// .reason files that explain a rejected one.
func episodes(files []spool.File) []spool.File {
	var out []spool.File
	for _, f := range files {
		if !spool.InProgress(f.Name) && !strings.HasSuffix(f.Name, spool.ReasonSuffix) {
			out = append(out, f)
		}
	}
	return out
}

// writable proves dir takes new files by making one. The probe's name starts with a
// dot, which ship treats as in progress, so a concurrent ship never picks it up.
func writable(dir string) error {
	info, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return errors.New("is missing")
	case err != nil:
		return errors.New("cannot be used: " + reason(err))
	case !info.IsDir():
		return errors.New("is not a folder")
	}
	f, err := os.CreateTemp(dir, ".doctor-*")
	if err != nil {
		return errors.New("is not writable: " + reason(err))
	}
	f.Close()
	return os.Remove(f.Name())
}

// reason is an error without the path the caller already names.
func reason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
