package release

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Upload is a signed dist folder, ready to be sent: the manifest and signature as
// signed, and each target's file on this machine.
type Upload struct {
	Manifest Manifest
	Raw, Sig []byte
	Paths    map[string]string // target file name → path here
	Dir      string
}

// LoadUpload reads the manifest and signature `release sign` wrote in dir and finds
// each target's binary in goreleaser's output by its SHA-256, so a binary changed
// since the signing is refused here. The signature is the receiver's to check
// (serve.update.public_keys), and every host's again.
func LoadUpload(dir string) (Upload, error) {
	d, err := Discover(dir)
	if err != nil {
		return Upload{}, err
	}
	u := Upload{Dir: d.Dir, Paths: map[string]string{}}
	if u.Raw, err = os.ReadFile(filepath.Join(d.Dir, ManifestName)); err != nil {
		return u, fmt.Errorf("%w: sign the release first (`cis490 release sign %s`)", err, dir)
	}
	if u.Sig, err = os.ReadFile(filepath.Join(d.Dir, SignatureName)); err != nil {
		return u, fmt.Errorf("%w: sign the release first (`cis490 release sign %s`)", err, dir)
	}
	if u.Manifest, err = Parse(u.Raw); err != nil {
		return u, fmt.Errorf("%s: %w", filepath.Join(d.Dir, ManifestName), err)
	}
	if u.Manifest.Commit != d.Commit {
		return u, fmt.Errorf("%s is for commit %s but %s holds a build of %s: sign it again", ManifestName, u.Manifest.Commit, d.Dir, d.Commit)
	}
	for _, t := range u.Manifest.Targets {
		for _, b := range d.Binaries {
			if b.SHA256 == t.SHA256 && b.Size == t.Size {
				u.Paths[t.File] = b.Path
			}
		}
		if u.Paths[t.File] == "" {
			return u, fmt.Errorf("%s: no binary in %s matches %s (%s, SHA-256 %s): the folder changed since it was signed; sign it again",
				ManifestName, d.Dir, t.File, t.Platform(), t.SHA256)
		}
	}
	return u, nil
}

// Size is the tar stream's length: what Write writes, for Content-Length.
func (u Upload) Size() int64 {
	n := entrySize(int64(len(u.Raw))) + entrySize(int64(len(u.Sig)))
	for _, t := range u.Manifest.Targets {
		n += entrySize(t.Size)
	}
	return n + 2*512 // two zero blocks end the archive
}

func entrySize(n int64) int64 { return 512 + (n+511)/512*512 }

// Write writes the upload as a tar stream: the manifest, the signature, then the
// binaries, each read from disk as it is sent.
func (u Upload) Write(w io.Writer) error {
	tw := tar.NewWriter(w)
	mtime := u.Manifest.CreatedAt
	if mtime.IsZero() {
		mtime = time.Unix(0, 0)
	}
	header := func(name string, size int64) *tar.Header {
		return &tar.Header{Name: name, Size: size, Mode: 0o644, Typeflag: tar.TypeReg, ModTime: mtime, Format: tar.FormatUSTAR}
	}
	for _, e := range []struct {
		name string
		data []byte
	}{{ManifestName, u.Raw}, {SignatureName, u.Sig}} {
		if err := tw.WriteHeader(header(e.name, int64(len(e.data)))); err != nil {
			return err
		}
		if _, err := tw.Write(e.data); err != nil {
			return err
		}
	}
	for _, t := range u.Manifest.Targets {
		if err := tw.WriteHeader(header(t.File, t.Size)); err != nil {
			return err
		}
		if err := copyFile(tw, u.Paths[t.File]); err != nil {
			return err
		}
	}
	return tw.Close()
}

func copyFile(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}
