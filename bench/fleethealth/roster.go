package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/cis490/cis490/internal/fleethealth"
	"github.com/cis490/cis490/internal/silences"
	"github.com/cis490/cis490/internal/tokens"
)

// rosterFolder makes dir a data folder with base's index and reports (symlinked: the
// same bytes, so the two cases differ only by the roster and the silences), a tokens
// file with a host token for each of the hosts, and n silences spread over the six
// days before lastDay: one in ten still active at the end of lastDay, the rest over.
// It returns the tokens file's path; a folder made by an earlier run (-dir) is kept.
func rosterFolder(dir, base string, hosts, n int, lastDay time.Time) (string, error) {
	tokensPath := filepath.Join(dir, "tokens.toml")
	if _, err := os.Stat(tokensPath); err == nil {
		return tokensPath, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	abs, err := filepath.Abs(base)
	if err != nil {
		return "", err
	}
	for _, sub := range []string{"index", "host-health"} {
		if err := os.Symlink(filepath.Join(abs, sub), filepath.Join(dir, sub)); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", err
		}
	}
	for h := range hosts {
		if _, _, err := tokens.Mint(tokensPath, tokens.Identity{Host: fmt.Sprintf("lab-%03d", h)}, lastDay.AddDate(0, 0, -30)); err != nil {
			return "", err
		}
	}
	path := silences.Path(dir)
	const most = 7 * 24 * time.Hour
	for i := range n {
		made := lastDay.AddDate(0, 0, -6).Add(time.Duration(i) * 8 * time.Minute)
		end := made.Add(2 * time.Hour)
		if i%10 == 0 {
			end = made.Add(most)
		}
		symptom := ""
		if i%2 == 1 {
			symptom = fleethealth.Symptoms[i%len(fleethealth.Symptoms)]
		}
		s := silences.Silence{Host: fmt.Sprintf("lab-%03d", i%hosts), Symptom: symptom, End: end, Reason: "bench: maintenance", By: "bench"}
		if _, err := silences.Add(path, s, made, most, fleethealth.Symptoms); err != nil {
			return "", err
		}
	}
	return tokensPath, nil
}
