package receiver_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/gate"
	"github.com/cis490/cis490/internal/index"
	"github.com/cis490/cis490/internal/protocol"
	"github.com/cis490/cis490/internal/receiver"
	"github.com/cis490/cis490/internal/store"
	"github.com/cis490/cis490/internal/testpki"
	"github.com/cis490/cis490/internal/testutil"
	"github.com/cis490/cis490/internal/tokens"
)

type setup struct {
	tokens     bool // false: open mode
	allow      []string
	unstamped  string
	maxEpisode int64
	maxReport  int64
	minFree    int64
	ca         *testpki.CA // TLS with a server certificate from this CA
	mtls       bool        // and client certificates from it (serve.tls.client_ca_file)
	root       string      // the data folder's parent; "" is a new temp folder
	now        func() time.Time
	fleet      receiver.FleetOptions
	episodes   store.Episodes // nil: the data folder
	stall      time.Duration  // 0: 2 s
}

// harness is a real receiver on a loopback port with its data in a temp folder.
type harness struct {
	t         *testing.T
	root      string // parent of the data folder: nothing may appear here but data/
	data      string
	srv       *receiver.Server
	ts        *httptest.Server
	client    *http.Client
	logs      *testutil.SyncBuffer
	tokenFile string
	index     *index.Writer
}

func newHarness(t *testing.T, s setup) *harness {
	t.Helper()
	root := s.root
	if root == "" {
		root = t.TempDir()
	}
	h := &harness{t: t, root: root, data: filepath.Join(root, "data"), logs: &testutil.SyncBuffer{}}
	log := zerolog.New(h.logs)
	cfg := config.Default().Serve
	cfg.DataDir = h.data
	cfg.Gate.Unstamped = config.UnstampedAllow
	if s.mtls {
		cfg.TLS.ClientCAFile = s.ca.CertPEM // the routes that need a client certificate ask for one
	}
	if s.unstamped != "" {
		cfg.Gate.Unstamped = s.unstamped
	}
	if s.maxEpisode > 0 {
		cfg.MaxEpisodeBytes = config.ByteSize(s.maxEpisode)
	}
	if s.maxReport > 0 {
		cfg.MaxReportBytes = config.ByteSize(s.maxReport)
	}
	st, err := store.Open(h.data, store.Options{MinFreeBytes: s.minFree, Logger: log})
	require.NoError(t, err)
	h.index, err = index.OpenWriter(filepath.Join(h.data, "index"))
	require.NoError(t, err)
	t.Cleanup(func() { h.index.Close() })

	var sources []gate.Source
	if s.allow != nil {
		list := filepath.Join(t.TempDir(), "allowlist")
		require.NoError(t, os.WriteFile(list, []byte(strings.Join(s.allow, "\n")+"\n"), 0o600))
		sources = append(sources, gate.NewFileSource(list))
	}
	g := gate.New(sources, gate.Options{Logger: log})
	require.NoError(t, g.Refresh(t.Context()))

	var toks *tokens.Store
	if s.tokens {
		h.tokenFile = filepath.Join(t.TempDir(), "tokens.toml")
		_, err := tokens.Append(h.tokenFile, tokens.Identity{Admin: "bootstrap"}, time.Now())
		require.NoError(t, err)
		toks, err = tokens.OpenStore(h.tokenFile, log)
		require.NoError(t, err)
	}
	stall := s.stall
	if stall == 0 {
		stall = 2 * time.Second
	}
	h.srv = receiver.New(receiver.Options{Config: cfg, Store: st, Index: h.index, Gate: g, Tokens: toks, Logger: log,
		StallTimeout: stall, Now: s.now, Fleet: s.fleet, Episodes: s.episodes})
	h.ts = httptest.NewUnstartedServer(h.srv.Handler())
	if s.ca != nil {
		h.ts.TLS = &tls.Config{Certificates: []tls.Certificate{s.ca.Server("receiver").TLS}}
		if s.mtls { // as serverTLS configures it
			h.ts.TLS.ClientCAs = s.ca.Pool()
			h.ts.TLS.ClientAuth = tls.VerifyClientCertIfGiven
		}
		h.ts.StartTLS()
		h.client = h.tlsClient(s.ca, nil)
	} else {
		h.ts.Start()
		h.client = h.ts.Client()
	}
	t.Cleanup(h.ts.Close)
	return h
}

func (h *harness) tlsClient(ca *testpki.CA, cert *testpki.Pair) *http.Client {
	cfg := &tls.Config{RootCAs: ca.Pool()}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{cert.TLS}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
}

// mint adds a token to the receiver's tokens file.
func (h *harness) mint(id tokens.Identity) string {
	h.t.Helper()
	tok, err := tokens.Append(h.tokenFile, id, time.Now())
	require.NoError(h.t, err)
	return tok
}

// req describes one request; zero fields are left out.
type req struct {
	method, path string
	body         io.Reader
	host         string // X-Cis490-Host
	token        string
	commit       string
	header       map[string]string
	client       *http.Client
}

type resp struct {
	status int
	header http.Header
	body   []byte
	json   map[string]any
}

func (h *harness) do(r req) resp {
	h.t.Helper()
	out, err := tryDo(h, r)
	require.NoError(h.t, err)
	return out
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// upload PUTs data as an episode.
func (h *harness) upload(r req, name string, data []byte) resp {
	h.t.Helper()
	r.method, r.path, r.body = http.MethodPut, "/v1/episodes", bytes.NewReader(data)
	if r.header == nil {
		r.header = map[string]string{}
	}
	if _, ok := r.header[protocol.HeaderEpisode]; !ok {
		r.header[protocol.HeaderEpisode] = name
	}
	if _, ok := r.header[protocol.HeaderSHA256]; !ok {
		r.header[protocol.HeaderSHA256] = sum(data)
	}
	return h.do(r)
}

// files lists every regular file below dir, relative to it.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	return out
}

// indexLines reads back what the server wrote to its request index.
func (h *harness) indexLines() []index.Entry {
	h.t.Helper()
	require.NoError(h.t, h.index.Sync())
	var out []index.Entry
	now := time.Now()
	_, err := index.Read(filepath.Join(h.data, "index"), now.Add(-48*time.Hour), now.Add(time.Hour), func(e index.Entry) error {
		out = append(out, e)
		return nil
	})
	require.NoError(h.t, err)
	return out
}
