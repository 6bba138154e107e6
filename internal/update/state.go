package update

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/google/renameio/v2"

	"github.com/cis490/cis490/internal/fsutil"
)

// The files of update.state_dir.
const (
	StateFile    = "state.json"
	lockFile     = "update.lock"
	previousFile = "cis490.previous" // the binary before the last switch, for rollback
)

// Results an attempt records.
const (
	ResultUpToDate   = "up-to-date"  // this binary is the target
	ResultUpdated    = "updated"     // switched, and doctor did not get worse
	ResultRolledBack = "rolled-back" // switched, doctor got worse, switched back
	ResultRefused    = "refused"     // the target is not one this host may run (signature, seq, platform, marked bad)
	ResultFailed     = "failed"      // the attempt could not finish (network, disk, a bad download); nothing changed
)

// RefusedSignature is State.Refused for a manifest whose signature did not verify.
const RefusedSignature = "signature"

// The phases of a switch in flight, recorded before each step that changes the
// binary, so a run after a crash knows where the last one stopped.
const (
	phaseSwitching   = "switching"
	phaseRollingBack = "rolling-back"
)

// State is state.json: what the last attempt did and what a next one must know.
type State struct {
	LastAttempt time.Time `json:"last_attempt"`
	Result      string    `json:"result"`
	Reason      string    `json:"reason,omitempty"`
	// Refused is RefusedSignature when a refusal was for the signature: someone
	// served a release nobody signed, which doctor reports as a failure.
	Refused      string `json:"refused,omitempty"`
	CommitBefore string `json:"commit_before,omitempty"`
	CommitAfter  string `json:"commit_after,omitempty"`
	// TargetSeq is the seq of the release the last attempt looked at.
	TargetSeq int64 `json:"target_seq,omitempty"`
	// AppliedSeq is the highest seq this host has run: a target below it is a replay
	// (refused unless --allow-downgrade).
	AppliedSeq    int64  `json:"applied_seq"`
	AppliedCommit string `json:"applied_commit,omitempty"`
	// Binary is the path the update replaces.
	Binary string `json:"binary,omitempty"`
	// Previous is the commit of state_dir/cis490.previous.
	Previous string `json:"previous,omitempty"`
	// Bad is a release that was rolled back: not tried again until a higher seq.
	Bad *Bad `json:"bad,omitempty"`
	// Pending is a switch that a crash interrupted; the next run finishes it.
	Pending *Pending `json:"pending,omitempty"`
	// LastSuccess is when an attempt last ended up-to-date or updated.
	LastSuccess time.Time `json:"last_success,omitzero"`
}

// Bad is a release marked bad by a rollback.
type Bad struct {
	Commit string `json:"commit"`
	Seq    int64  `json:"seq"`
	Reason string `json:"reason"`
}

// Pending is a switch in flight.
type Pending struct {
	Phase string `json:"phase"`
	From  string `json:"from"`
	To    string `json:"to"`
	Seq   int64  `json:"seq"`
	// Passed are the doctor checks that passed with the old binary.
	Passed  []string  `json:"passed"`
	Started time.Time `json:"started"`
	// Reason is why a rollback began.
	Reason string `json:"reason,omitempty"`
}

// ReadState reads dir's state file; a missing one is the zero State and no error.
func ReadState(dir string) (State, error) {
	var s State
	data, err := os.ReadFile(filepath.Join(dir, StateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("%s: %w", filepath.Join(dir, StateFile), err)
	}
	return s, nil
}

func writeState(dir string, s State) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := renameio.WriteFile(filepath.Join(dir, StateFile), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write the update state: %w", err)
	}
	return fsutil.SyncDir(dir)
}
