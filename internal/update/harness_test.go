package update

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/client"
	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/gate"
	"github.com/cis490/cis490/internal/index"
	"github.com/cis490/cis490/internal/receiver"
	"github.com/cis490/cis490/internal/release"
	"github.com/cis490/cis490/internal/release/releasetest"
	"github.com/cis490/cis490/internal/store"
)

// fake is a stand-in for a cis490 binary: a shell script that answers `version
// --json` with its commit and `doctor --json` with the given checks.
type fake struct {
	commit string
	checks map[string]string // id: status
	// versionFails makes `version` exit 1.
	versionFails bool
}

func (f fake) script() []byte {
	var checks []string
	for _, id := range slices.Sorted(maps.Keys(f.checks)) { // the same bytes every time
		checks = append(checks, fmt.Sprintf(`{"id":%q,"status":%q}`, id, f.checks[id]))
	}
	version := fmt.Sprintf(`echo '{"version":"v-%s","commit":"%s"}'`, f.commit[:4], f.commit)
	if f.versionFails {
		version = "echo 'panic: broken build' >&2; exit 1"
	}
	return fmt.Appendf(nil, "#!/bin/sh\n# %s\ncase \"$1\" in\nversion) %s ;;\ndoctor) echo '{\"checks\":[%s]}'; exit 0 ;;\n*) exit 2 ;;\nesac\n",
		strings.Repeat("x", 2000), version, strings.Join(checks, ","))
}

var healthy = map[string]string{"config": "ok", "receiver-reachable": "ok", "token": "ok", "commit-allowed": "fail"}

// host is a lab host in a temp folder, with a receiver on loopback.
type host struct {
	t       *testing.T
	key     releasetest.Key
	url     string
	data    string
	bin     string // the installed binary
	cfg     config.Config
	oldData []byte
}

const (
	commitA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	commitB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	commitC = "cccccccccccccccccccccccccccccccccccccccc"
)

// newHost installs old at bin and starts an open-mode receiver that trusts a new key.
func newHost(t *testing.T, old fake) *host {
	t.Helper()
	h := &host{t: t, key: releasetest.NewKey(t), data: filepath.Join(t.TempDir(), "data")}
	log := zerolog.New(zerolog.NewTestWriter(t))
	sc := config.Default().Serve
	sc.DataDir = h.data
	sc.Update.PublicKeys = h.key.Public
	st, err := store.Open(h.data, store.Options{Logger: log})
	require.NoError(t, err)
	ix, err := index.OpenWriter(filepath.Join(h.data, "index"))
	require.NoError(t, err)
	t.Cleanup(func() { ix.Close() })
	g := gate.New(nil, gate.Options{Logger: log})
	srv := receiver.New(receiver.Options{Config: sc, Store: st, Index: ix, Gate: g, Logger: log})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	h.url = ts.URL

	root := t.TempDir()
	h.bin = filepath.Join(root, "usr", "bin", "cis490")
	require.NoError(t, os.MkdirAll(filepath.Dir(h.bin), 0o755))
	h.oldData = old.script()
	require.NoError(t, os.WriteFile(h.bin, h.oldData, 0o755))
	h.cfg = config.Default()
	h.cfg.Host = "lab-07"
	h.cfg.Receiver.URL = h.url
	h.cfg.Update.PublicKeys = h.key.Public
	h.cfg.Update.StateDir = filepath.Join(root, "var", "lib", "cis490", "update")
	h.cfg.Doctor.Timeout = 5 * time.Second
	return h
}

// publish publishes a release of f for this machine's platform and armv7, signed by key.
func (h *host) publish(f fake, seq int64, key releasetest.Key) release.Manifest {
	h.t.Helper()
	bins := []releasetest.Bin{{GOARCH: runtime.GOARCH, GOARM: release.RunningGOARM(), Data: f.script()}}
	if runtime.GOARCH != "arm" {
		bins = append(bins, releasetest.Bin{GOARCH: "arm", GOARM: "7", Data: []byte("an armv7 build")})
	}
	dir := releasetest.Dist(h.t, f.commit, "v-"+f.commit[:4], bins...)
	m := key.Sign(h.t, dir, seq)
	req, err := http.NewRequest(http.MethodPut, h.url+release.ReleasePath(f.commit), bytes.NewReader(releasetest.Upload(h.t, dir)))
	require.NoError(h.t, err)
	res, err := http.DefaultClient.Do(req)
	require.NoError(h.t, err)
	res.Body.Close()
	require.Equal(h.t, http.StatusCreated, res.StatusCode)
	return m
}

func (h *host) opts() Options {
	h.t.Helper()
	c, err := client.New(h.cfg, client.Options{Retries: 0, Logger: zerolog.New(zerolog.NewTestWriter(h.t))})
	require.NoError(h.t, err)
	return Options{Config: h.cfg, Client: c, Binary: h.bin, Logger: zerolog.New(zerolog.NewTestWriter(h.t))}
}

func (h *host) run(edit ...func(*Options)) (Result, error) {
	h.t.Helper()
	o := h.opts()
	for _, e := range edit {
		e(&o)
	}
	return Run(context.Background(), o)
}

// installed is the commit of the binary at h.bin, as it says itself.
func (h *host) installed() string {
	h.t.Helper()
	s, err := release.VersionOf(context.Background(), h.bin)
	require.NoError(h.t, err)
	return s.Commit
}

func (h *host) state() State {
	h.t.Helper()
	s, err := ReadState(h.cfg.Update.StateDir)
	require.NoError(h.t, err)
	return s
}

// temps lists update leftovers beside the binary and in the state folder.
func (h *host) temps() []string {
	a, _ := filepath.Glob(filepath.Join(filepath.Dir(h.bin), ".cis490.update-*"))
	b, _ := filepath.Glob(filepath.Join(h.cfg.Update.StateDir, previousFile+".tmp-*"))
	return append(a, b...)
}
