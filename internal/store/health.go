package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/renameio/v2"

	"github.com/cis490/cis490/internal/fsutil"
)

// PutHostHealth replaces host's latest report. The receiver's clock, not the
// client's, sets "received_at": a sick host's clock is one of the things that breaks.
func (s *Store) PutHostHealth(host string, report []byte, receivedAt time.Time) error {
	if !validHost(host) {
		return fmt.Errorf("%w: host %q", ErrBadName, host)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(report, &obj); err != nil {
		return fmt.Errorf("%w: %v", ErrNotObject, err)
	}
	if obj == nil { // the literal null
		return ErrNotObject
	}
	at, err := json.Marshal(receivedAt.UTC())
	if err != nil {
		return err
	}
	obj["received_at"] = at
	data, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	path := filepath.Join(s.health, host+".json")
	if err := renameio.WriteFile(path, data, filePerm, renameio.WithTempDir(s.tmp)); err != nil {
		return fmt.Errorf("store host-health %s: %w", host, noSpace(err))
	}
	return fsutil.SyncDir(s.health)
}

// HostHealth returns host's latest report; the error wraps fs.ErrNotExist when the
// host never sent one.
func (s *Store) HostHealth(host string) ([]byte, error) {
	if !validHost(host) {
		return nil, fmt.Errorf("%w: host %q", ErrBadName, host)
	}
	data, err := os.ReadFile(filepath.Join(s.health, host+".json"))
	if err != nil {
		return nil, fmt.Errorf("host-health %s: %w", host, err)
	}
	return data, nil
}

// AllHostHealth maps each host to its latest report. Files that are not ours (an
// editor's backup, a stray name, a hand-edited report gone bad) are skipped so one
// cannot break the whole listing.
func (s *Store) AllHostHealth() (map[string]json.RawMessage, error) {
	entries, err := os.ReadDir(s.health)
	if err != nil {
		return nil, fmt.Errorf("host-health: %w", err)
	}
	all := make(map[string]json.RawMessage, len(entries))
	for _, e := range entries {
		host, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || !e.Type().IsRegular() || !validHost(host) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(s.health, e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("host-health %s: %w", host, err)
		}
		if !json.Valid(data) {
			s.opts.Logger.Warn().Str("host", host).Msg("host-health report is not valid JSON; skipped")
			continue
		}
		all[host] = data
	}
	return all, nil
}
