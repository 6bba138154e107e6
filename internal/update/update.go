// Package update is `cis490 update` on a lab host (SPEC §4.5): fetch the release the
// receiver names, verify its signed manifest, download this platform's binary, prove
// it runs, switch to it and prove the host is no worse off, else switch back.
//
// # Where the binary lives
//
// The binary being replaced is the one running (os.Executable, normally
// /usr/bin/cis490, which the .deb installs and every unit runs). It is replaced in
// place, by rename(2) in its own folder: the new binary is downloaded beside it as
// .cis490.update-*, fsynced, checked and renamed over it. The previous binary is
// kept as update.state_dir/cis490.previous for rollback, and state.json there says
// what happened. Nothing else changes: the units, the PATH and the package's file
// list stay what they were, so the .deb and the update coexist. A later `dpkg -i`
// replaces the binary as dpkg always does (and the next update moves the host on
// from whatever commit it then runs); `dpkg -V cis490` reports /usr/bin/cis490 as
// changed after an update, which is true, and breaks nothing. A `current` symlink
// instead would mean a symlink at /usr/bin/cis490 that dpkg replaces with a file at
// its next upgrade, or units that no longer run the package's binary: more parts,
// and the same rename at the end.
//
// # At every moment the host has one complete, working binary
//
// Kill -9 at any step leaves:
//   - while downloading, checking, smoke-testing or running doctor: the old binary
//     untouched, and a temp file beside it that the next run removes (sweep);
//   - while keeping the previous binary: a temp file in state_dir, removed likewise;
//     the old cis490.previous, if any, is replaced only by a rename;
//   - after the pending record and before or after the rename: the old binary or the
//     new one, both complete and smoke-tested (rename is atomic); state.json says
//     "switching" from and to which commits, and the next run asks the binary which
//     it is: the old one, and the attempt is recorded failed; the new one, and it
//     runs the doctor comparison it missed against the checks recorded as passed;
//   - while rolling back: the new binary or the previous one (again one rename), and
//     state.json says "rolling-back", which the next run finishes.
//
// The service runs in cis490-autoupdate.service, never inside a process it replaces:
// a running process keeps its old file open after the rename.
package update

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/gofrs/flock"
	"github.com/rs/zerolog"

	"github.com/cis490/cis490/internal/client"
	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/release"
)

// Options are one run's inputs.
type Options struct {
	Config config.Config
	Client *client.Client
	Logger zerolog.Logger
	// Binary is the file to replace; "" means the running executable.
	Binary string
	// Running is the commit of the running binary; "" asks Binary itself.
	Running        string
	Check          bool   // only say what would be done
	AllowDowngrade bool   // take a release whose seq is below the last applied
	To             string // this commit's release rather than the target
	// Progress, when set, is given the download's size and returns where its
	// bytes are counted (a progress bar).
	Progress func(size int64) io.Writer
	Now      func() time.Time
	// GOOS, GOARCH and GOARM are this host's platform; "" means the running binary's.
	GOOS, GOARCH, GOARM string
	// AtStep is called at each step (tests crash the process there).
	AtStep func(step string)
}

// Result is what a run did, as recorded in the state file (or, with Check, would do).
type Result struct {
	State State
	// Plan is what --check would do.
	Plan string
}

// Refusals and failures, for the exit code and for people.
var (
	ErrNoKeys = errors.New("update.public_keys is empty: autoupdate is off on this host; set it to the release key (cis490 install lab-host --update-key KEY)")
	ErrLocked = errors.New("another cis490 update is running")
	// ErrRefused is a target this host will not run; ErrRolledBack a switch undone.
	ErrRefused    = errors.New("update refused")
	ErrRolledBack = errors.New("update rolled back")
)

type run struct {
	Options
	keys  release.Keys
	state State
	dir   string
}

// Run does one update under update.state_dir's lock.
func Run(ctx context.Context, opts Options) (Result, error) {
	r := &run{Options: opts, dir: opts.Config.Update.StateDir}
	if err := r.defaults(); err != nil {
		return Result{}, err
	}
	var err error
	if r.keys, err = opts.Config.Update.Keys(); err != nil {
		return Result{}, err
	}
	if len(r.keys) == 0 {
		return Result{}, ErrNoKeys
	}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return Result{}, fmt.Errorf("update.state_dir: %w", err)
	}
	lock := flock.New(filepath.Join(r.dir, lockFile))
	ok, err := lock.TryLock()
	if err != nil {
		return Result{}, fmt.Errorf("lock %s: %w", lock.Path(), err)
	}
	if !ok {
		return Result{}, ErrLocked
	}
	defer func() { _ = lock.Unlock() }()
	r.step("locked")
	if r.state, err = ReadState(r.dir); err != nil {
		return Result{}, fmt.Errorf("%w; move it away to start afresh", err)
	}
	if !r.Check {
		if removed := sweep(r.Binary, r.dir); len(removed) > 0 {
			r.Logger.Info().Strs("removed", removed).Msg("removed what an interrupted update left")
		}
		if r.state.Pending != nil {
			return r.resume(ctx)
		}
	}
	return r.update(ctx)
}

func (r *run) defaults() error {
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.GOOS == "" {
		r.GOOS, r.GOARCH, r.GOARM = runtime.GOOS, runtime.GOARCH, release.RunningGOARM()
	}
	if r.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find the running binary: %w", err)
		}
		if exe, err = filepath.EvalSymlinks(exe); err != nil {
			return fmt.Errorf("find the running binary: %w", err)
		}
		r.Binary = exe
	}
	return nil
}

func (r *run) step(name string) {
	if r.AtStep != nil {
		r.AtStep(name)
	}
}

// update is steps 1 to 8 of SPEC §4.5 for a host with no switch pending.
func (r *run) update(ctx context.Context) (Result, error) {
	before, err := r.installedCommit(ctx)
	if err != nil {
		return r.finish(State{Result: ResultFailed, Reason: err.Error()}, err)
	}
	rec := State{CommitBefore: before, CommitAfter: before}
	p, err := r.fetchRelease(ctx)
	if err != nil {
		rec.Result, rec.Reason = ResultFailed, err.Error()
		return r.finish(rec, err)
	}
	m, err := release.Verify(p.Raw, []byte(p.Signature), r.keys)
	if err != nil {
		rec.Refused = RefusedSignature
		return r.refuse(rec, fmt.Errorf("the release the receiver names (%s) is not signed by a key of update.public_keys: %w", short(p.Commit), err))
	}
	rec.TargetSeq = m.Seq
	if r.To != "" && m.Commit != r.To {
		return r.refuse(rec, fmt.Errorf("asked for %s, the receiver's manifest is for %s", r.To, m.Commit))
	}
	if m.Commit == before {
		rec.Result, rec.Reason = ResultUpToDate, "this binary is commit "+short(before)+", the target"
		rec.AppliedSeq, rec.AppliedCommit = max(r.state.AppliedSeq, m.Seq), m.Commit
		if r.Check {
			return Result{State: rec, Plan: "nothing to do: " + rec.Reason}, nil
		}
		return r.finish(rec, nil)
	}
	if bad := r.state.Bad; bad != nil && bad.Commit == m.Commit && m.Seq <= bad.Seq && !r.AllowDowngrade {
		return r.refuse(rec, fmt.Errorf("release %s (seq %d) was rolled back on this host (%s); it is tried again only when a release with a higher seq is published", short(m.Commit), m.Seq, bad.Reason))
	}
	if m.Seq < r.state.AppliedSeq && !r.AllowDowngrade {
		return r.refuse(rec, fmt.Errorf("release %s has seq %d, lower than seq %d that this host already applied: a replay or a downgrade; use --allow-downgrade if it is meant", short(m.Commit), m.Seq, r.state.AppliedSeq))
	}
	t, err := m.Pick(r.GOOS, r.GOARCH, r.GOARM)
	if err != nil {
		return r.refuse(rec, err)
	}
	if r.Check {
		plan := fmt.Sprintf("would update %s from %s to %s (version %s, seq %d): %s, %d bytes", r.Binary, short(before), short(m.Commit), m.Version, m.Seq, t.File, t.Size)
		return Result{State: rec, Plan: plan}, nil
	}
	return r.install(ctx, rec, m, t)
}

// install downloads, checks and switches to t of m.
func (r *run) install(ctx context.Context, rec State, m release.Manifest, t release.Target) (Result, error) {
	log := r.Logger.With().Str("from", short(rec.CommitBefore)).Str("to", short(m.Commit)).Int64("seq", m.Seq).Logger()
	log.Info().Str("file", t.File).Int64("size", t.Size).Msg("downloading the release")
	tmp, err := newTemp(r.Binary)
	if err != nil {
		return r.fail(rec, fmt.Errorf("create the download beside %s: %w", r.Binary, err))
	}
	keep := false
	defer func() {
		if !keep {
			_ = os.Remove(tmp.Name())
		}
	}()
	var progress io.Writer
	if r.Progress != nil {
		progress = r.Progress(t.Size)
	}
	err = download(ctx, r.Client, m.Commit, t, tmp, progress)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return r.fail(rec, err)
	}
	if err := os.Chmod(tmp.Name(), 0o755); err != nil {
		return r.fail(rec, err)
	}
	r.step("downloaded")

	got, err := release.VersionOf(ctx, tmp.Name())
	if err == nil && got.Commit != m.Commit {
		err = fmt.Errorf("the new binary says it is commit %q, the manifest %s", got.Commit, m.Commit)
	}
	if err != nil {
		return r.refuse(rec, fmt.Errorf("smoke test: %w", err))
	}
	r.step("smoke-tested")

	timeout := r.Config.Doctor.Timeout + 10*time.Second
	beforeChecks, why := runDoctor(ctx, r.Binary, r.Config.File, timeout)
	if beforeChecks == nil {
		log.Warn().Str("why", why).Msg("the current binary's doctor gave no report: the new one is compared with nothing")
	}
	r.step("doctor-before")

	if err := keepPrevious(r.Binary, r.dir); err != nil {
		return r.fail(rec, err)
	}
	r.state.Previous = rec.CommitBefore
	r.step("kept-previous")

	pending := &Pending{Phase: phaseSwitching, From: rec.CommitBefore, To: m.Commit, Seq: m.Seq, Passed: beforeChecks.passed(), Started: r.Now().UTC()}
	if err := r.save(pending); err != nil {
		return r.fail(rec, err)
	}
	r.step("pending")

	if err := place(tmp.Name(), r.Binary); err != nil {
		r.state.Pending = nil
		return r.fail(rec, err)
	}
	keep = true
	log.Info().Str("binary", r.Binary).Msg("switched to the new binary; checking it with doctor")
	r.step("switched")
	return r.verify(ctx, pending)
}

// verify runs the new binary's doctor against what passed before the switch and
// keeps the switch or rolls it back.
func (r *run) verify(ctx context.Context, p *Pending) (Result, error) {
	rec := State{CommitBefore: p.From, CommitAfter: p.To, TargetSeq: p.Seq}
	after, why := runDoctor(ctx, r.Binary, r.Config.File, r.Config.Doctor.Timeout+10*time.Second)
	r.step("doctor-after")
	worse := regressions(p.Passed, after)
	if len(worse) == 0 {
		rec.Result = ResultUpdated
		rec.Reason = "now commit " + short(p.To)
		rec.AppliedSeq, rec.AppliedCommit = max(r.state.AppliedSeq, p.Seq), p.To
		if r.state.Bad != nil && p.Seq > r.state.Bad.Seq {
			r.state.Bad = nil
		}
		r.Logger.Info().Str("commit", short(p.To)).Int64("seq", p.Seq).Msg("updated")
		return r.finish(rec, nil)
	}
	reason := "doctor failed " + joinIDs(worse) + " after the switch, which passed before"
	if why != "" {
		reason += " (" + why + ")"
	}
	return r.rollback(p, reason)
}

func (r *run) rollback(p *Pending, reason string) (Result, error) {
	r.Logger.Warn().Str("reason", reason).Str("back_to", short(p.From)).Msg("rolling back")
	rb := *p
	rb.Phase, rb.Reason = phaseRollingBack, reason
	if err := r.save(&rb); err != nil {
		return Result{}, err
	}
	r.step("rolling-back")
	if err := restorePrevious(r.Binary, r.dir); err != nil {
		// The new binary stays, complete and smoke-tested; the next run retries.
		return Result{}, fmt.Errorf("%w (the next cis490 update retries the rollback)", err)
	}
	r.step("rolled-back")
	r.state.Bad = &Bad{Commit: p.To, Seq: p.Seq, Reason: reason}
	rec := State{Result: ResultRolledBack, Reason: reason, CommitBefore: p.From, CommitAfter: p.From, TargetSeq: p.Seq,
		AppliedSeq: r.state.AppliedSeq, AppliedCommit: r.state.AppliedCommit}
	return r.finish(rec, fmt.Errorf("%w: %s; back on %s, and %s is marked bad until a higher seq", ErrRolledBack, reason, short(p.From), short(p.To)))
}

// resume finishes a switch that a crash interrupted.
func (r *run) resume(ctx context.Context) (Result, error) {
	p := r.state.Pending
	now, err := release.VersionOf(ctx, r.Binary)
	r.Logger.Warn().Str("phase", p.Phase).Str("from", short(p.From)).Str("to", short(p.To)).Str("binary_is", short(now.Commit)).
		Msg("finishing an update that was interrupted")
	switch {
	case err != nil:
		// Not expected (each rename leaves a complete binary), but a broken binary at
		// bin is the one thing never to leave: put the previous one back.
		return r.rollback(p, "after an interrupted update the binary does not run: "+err.Error())
	case p.Phase == phaseRollingBack && now.Commit == p.To:
		return r.rollback(p, p.Reason)
	case p.Phase == phaseRollingBack:
		// The previous binary is back: only the record is missing.
		r.state.Bad = &Bad{Commit: p.To, Seq: p.Seq, Reason: p.Reason}
		rec := State{Result: ResultRolledBack, Reason: p.Reason, CommitBefore: p.From, CommitAfter: now.Commit, TargetSeq: p.Seq,
			AppliedSeq: r.state.AppliedSeq, AppliedCommit: r.state.AppliedCommit}
		return r.finish(rec, fmt.Errorf("%w: %s (the run was interrupted after switching back)", ErrRolledBack, p.Reason))
	case now.Commit == p.From:
		// Interrupted before the rename: nothing changed, so start again.
		r.state.Pending = nil
		return r.update(ctx)
	case now.Commit == p.To:
		return r.verify(ctx, p)
	}
	rec := State{Result: ResultFailed, Reason: "an update was interrupted and the binary is now " + short(now.Commit) + " (installed by something else)",
		CommitBefore: p.From, CommitAfter: now.Commit, AppliedSeq: r.state.AppliedSeq, AppliedCommit: r.state.AppliedCommit}
	return r.finish(rec, nil)
}

func (r *run) installedCommit(ctx context.Context) (string, error) {
	if r.Running != "" {
		return r.Running, nil
	}
	s, err := release.VersionOf(ctx, r.Binary)
	return s.Commit, err
}

func (r *run) fetchRelease(ctx context.Context) (release.Published, error) {
	var p release.Published
	path := release.TargetPath
	if r.To != "" {
		path = release.ReleasePath(r.To)
	}
	res, err := r.Client.Do(ctx, client.Request{Method: http.MethodGet, Path: path})
	if err != nil {
		return p, err
	}
	if res.StatusCode != http.StatusOK {
		return p, fmt.Errorf("ask the receiver for the release to run: %w", r.Client.StatusError(res))
	}
	defer res.Body.Close()
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&p); err != nil {
		return p, fmt.Errorf("the receiver's answer for %s is not a release: %w", path, err)
	}
	return p, nil
}

func (r *run) refuse(rec State, err error) (Result, error) {
	rec.Result, rec.Reason = ResultRefused, err.Error()
	if r.Check {
		return Result{State: rec, Plan: "would refuse: " + err.Error()}, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return r.finish(rec, fmt.Errorf("%w: %w", ErrRefused, err))
}

func (r *run) fail(rec State, err error) (Result, error) {
	rec.Result, rec.Reason = ResultFailed, err.Error()
	return r.finish(rec, err)
}

// finish records the attempt (never under --check) and returns err.
func (r *run) finish(rec State, err error) (Result, error) {
	if r.Check {
		return Result{State: rec}, err
	}
	rec.LastAttempt, rec.Binary, rec.Previous, rec.Bad = r.Now().UTC(), r.Binary, r.state.Previous, r.state.Bad
	if rec.AppliedSeq == 0 {
		rec.AppliedSeq, rec.AppliedCommit = r.state.AppliedSeq, r.state.AppliedCommit
	}
	rec.LastSuccess = r.state.LastSuccess
	if rec.Result == ResultUpdated || rec.Result == ResultUpToDate {
		rec.LastSuccess = rec.LastAttempt
	}
	r.state = rec
	if werr := writeState(r.dir, rec); werr != nil {
		return Result{State: rec}, errors.Join(err, werr)
	}
	r.step("recorded")
	return Result{State: rec}, err
}

// save records p as the switch in flight, keeping the last attempt's record.
func (r *run) save(p *Pending) error {
	s := r.state
	s.Pending = p
	if err := writeState(r.dir, s); err != nil {
		return err
	}
	r.state = s
	return nil
}
