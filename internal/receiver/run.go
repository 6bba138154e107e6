package receiver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	stdlog "log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/gofrs/flock"
	"github.com/rs/zerolog"

	"github.com/cis490/cis490/internal/ca"
	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/gate"
	"github.com/cis490/cis490/internal/index"
	"github.com/cis490/cis490/internal/objstore"
	"github.com/cis490/cis490/internal/store"
	"github.com/cis490/cis490/internal/tokens"
)

// Run serves the receiver until ctx is cancelled, then finishes in-flight requests.
// ready, when not nil, is called with the bound address once the server accepts
// connections. It validates the configuration, opens the data folder and the gate,
// binds the ports and serves, in that order.
func Run(ctx context.Context, cfg config.Config, log zerolog.Logger, ready func(addr net.Addr)) error {
	sc := cfg.Serve
	v, err := validate(sc, log)
	if err != nil {
		return err
	}
	data, err := openDataDir(sc, log)
	if err != nil {
		return err
	}
	defer data.close(log)
	defer startPartialSweep(data.store, log, partialSweepEvery)()
	authority, err := openCA(ctx, sc, v, log)
	if err != nil {
		return err
	}
	g, stopGate := startGate(ctx, sc.Gate, log)
	defer stopGate()

	// Cancelled when serve.drain_timeout cuts the requests still in flight, so that
	// their handlers stop and the store removes what they wrote.
	requestsCtx, cancelRequests := context.WithCancel(context.Background())
	defer cancelRequests()
	metrics := NewMetrics(g, data.store)
	episodes := startEpisodes(ctx, v, data.store, metrics)
	defer v.bucket.close()
	conns := newConnLimiter(sc.MaxConnections)
	refusals := newTLSRefusals(data.index, metrics, log, nil)
	srv := New(Options{Config: sc, Store: data.store, Index: data.index, Gate: g, Tokens: v.tokens, Logger: log, Metrics: metrics,
		Fleet: FleetOptions{Host: cfg.Host, Config: cfg.FleetHealth, AlertsPath: cfg.AlertsPath()}, CA: authority, Episodes: episodes})
	httpSrv := &http.Server{
		Handler: srv.Handler(),
		// No ReadTimeout: uploads may take as long as they keep sending (see
		// countingReader); headers and idle connections are bounded here.
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          stdlog.New(log.With().Str("component", "http").Logger(), "", 0),
		BaseContext:       func(net.Listener) context.Context { return requestsCtx },
		ConnState: func(c net.Conn, st http.ConnState) {
			conns.ConnState(c, st)
			refusals.ConnState(c, st) // indexes a refused client certificate as its connection closes
		},
	}
	ln, mln, err := listenPorts(v.addr, sc.MetricsListen, v.tls, conns)
	if err != nil {
		return err
	}
	r := &running{cfg: cfg, log: log, srv: srv, http: httpSrv, metrics: metrics, gate: g, tokens: v.tokens,
		store: data.store, cancelRequests: cancelRequests}
	return r.serve(ctx, ln, mln, ready)
}

// checked is what validate made of the configuration.
type checked struct {
	addr       string
	tokens     *tokens.Store // nil: open mode
	tls        *tls.Config   // nil: plain HTTP
	serverCert *serverCert   // the certificate tls serves, reloaded when it changes
	// clock is the CA's: time.Now unless $CIS490_TEST_CLOCK_OFFSET moves it.
	clock       func() time.Time
	clockOffset time.Duration
	bucket      bucket // serve.storage.backend s3; zero for fs
}

// validate checks everything the configuration names before the data folder is
// touched, so a receiver that cannot start for that reason leaves nothing behind.
// Its errors are *ConfigError.
func validate(sc config.Serve, log zerolog.Logger) (checked, error) {
	v := checked{addr: sc.ListenAddr()}
	if err := checkLimits(sc); err != nil {
		return v, &ConfigError{err}
	}
	var err error
	if v.clock, v.clockOffset, err = ca.ClockFromEnv(); err != nil {
		return v, &ConfigError{err}
	}
	if sc.TokensFile == "" && !isLoopback(v.addr) {
		return v, &ConfigError{fmt.Errorf("refusing to listen on %s without serve.tokens_file: anyone on the network could upload."+
			" Mint tokens with `cis490 token new --host NAME` and set serve.tokens_file, or listen on 127.0.0.1", v.addr)}
	}
	if sc.TokensFile != "" {
		if v.tokens, err = tokens.OpenStore(sc.TokensFile, log); err != nil {
			return v, &ConfigError{fmt.Errorf("serve.tokens_file: %w", err)}
		}
	}
	if err := checkGateSources(sc.Gate); err != nil {
		return v, &ConfigError{err}
	}
	if sc.TLS.CertFile != "" {
		if v.tls, v.serverCert, err = serverTLS(sc.TLS, log); err != nil {
			return v, &ConfigError{err}
		}
	}
	if v.bucket, err = openBucket(sc.Storage, v.clock, log); err != nil {
		return v, &ConfigError{err}
	}
	return v, nil
}

// dataDir is the open data folder: held by this receiver, its store and its request
// index.
type dataDir struct {
	unlock func()
	store  *store.Store
	index  *index.Writer
}

func openDataDir(sc config.Serve, log zerolog.Logger) (*dataDir, error) {
	unlock, err := lockDataDir(sc.DataDir)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(sc.DataDir, store.Options{MinFreeBytes: int64(sc.MinFreeBytes), Logger: log, PartialTTL: sc.PartialTTL})
	if err != nil {
		unlock()
		return nil, err
	}
	idx, err := index.OpenWriter(filepath.Join(sc.DataDir, "index"))
	if err != nil {
		unlock()
		return nil, err
	}
	return &dataDir{unlock: unlock, store: st, index: idx}, nil
}

// close closes the index, then lets the data folder go.
func (d *dataDir) close(log zerolog.Logger) {
	if err := d.index.Close(); err != nil {
		log.Error().Err(err).Msg("closing the request index")
	}
	d.unlock()
}

// startGate loads the allow-list sources once and keeps refreshing them until stop
// is called or ctx is cancelled.
func startGate(ctx context.Context, gc config.Gate, log zerolog.Logger) (g *gate.Gate, stop func()) {
	g = newGate(gc, log)
	// Bounded: a hung git or mount must not keep the receiver from starting (the gate
	// stays open until a source loads, and Run keeps retrying).
	startCtx, cancelStart := context.WithTimeout(ctx, 20*time.Second)
	err := g.Refresh(startCtx)
	cancelStart()
	if err != nil {
		log.Warn().Err(err).Msg("an allow-list source failed at start; it is retried every serve.gate.refresh")
	}
	gateCtx, stopGate := context.WithCancel(ctx)
	go g.Run(gateCtx)
	return g, stopGate
}

// listenPorts binds the API's port and, when metricsAddr is set, the metrics port.
// Both are bound before either serves: a failure to bind one leaves no request in
// flight behind.
func listenPorts(addr, metricsAddr string, tlsCfg *tls.Config, conns *connLimiter) (ln, mln net.Listener, err error) {
	if ln, err = listen(addr, tlsCfg, conns); err != nil {
		return nil, nil, err
	}
	if metricsAddr != "" {
		if mln, err = net.Listen("tcp", metricsAddr); err != nil {
			ln.Close()
			return nil, nil, fmt.Errorf("serve.metrics_listen %s: %w", metricsAddr, err)
		}
	}
	return ln, mln, nil
}

// running is a receiver whose data folder, gate and ports are open: what serve needs.
type running struct {
	cfg            config.Config
	log            zerolog.Logger
	srv            *Server
	http           *http.Server
	metrics        *Metrics
	gate           *gate.Gate
	tokens         *tokens.Store
	store          *store.Store
	cancelRequests context.CancelFunc
}

// serve serves ln (and mln, the metrics port, when not nil) until ctx is cancelled or
// a server fails, then drains.
func (r *running) serve(ctx context.Context, ln, mln net.Listener, ready func(addr net.Addr)) error {
	log, sc := r.log, r.cfg.Serve
	errc := make(chan error, 2)
	go func() { errc <- r.http.Serve(ln) }()
	var metricsSrv *http.Server
	if mln != nil {
		metricsSrv = &http.Server{Handler: r.metrics.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { errc <- metricsSrv.Serve(mln) }()
		log.Info().Str("addr", mln.Addr().String()).Msg("metrics listening")
	}
	announce(log, r.cfg, ln.Addr(), r.gate)
	if r.tokens != nil && r.tokens.Len() == 0 {
		log.Warn().Str("tokens_file", sc.TokensFile).Msg("the tokens file has no tokens yet: every /v1 request is refused 401 until one is minted with `cis490 token new --host NAME` (picked up within a second)")
	}
	if err := r.store.CheckFree(0); err != nil {
		log.Warn().Err(err).Msg("uploads will be refused 507 until space is freed or serve.min_free_bytes lowered")
	}
	if ready != nil {
		ready(ln.Addr())
	}
	if _, err := daemon.SdNotify(false, daemon.SdNotifyReady); err != nil {
		log.Warn().Err(err).Msg("could not notify systemd that the receiver is ready")
	}

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info().Str("drain_timeout", sc.DrainTimeout.String()).Msg("shutting down: finishing in-flight requests")
	_, _ = daemon.SdNotify(false, daemon.SdNotifyStopping)
	err := r.srv.shutdown(log, r.http, r.cancelRequests, sc.DrainTimeout)
	if metricsSrv != nil {
		_ = metricsSrv.Close() // kept up during the drain: it shows the drain
	}
	if err != nil {
		return err
	}
	log.Info().Msg("stopped")
	return nil
}

// checkLimits refuses limits that would refuse everything or never let go.
func checkLimits(sc config.Serve) error {
	for _, l := range []struct {
		key string
		ok  bool
		val any
	}{
		{"serve.max_uploads", sc.MaxUploads > 0, sc.MaxUploads},
		{"serve.max_uploads_per_host", sc.MaxUploadsPerHost > 0, sc.MaxUploadsPerHost},
		{"serve.max_connections", sc.MaxConnections > 0, sc.MaxConnections},
		{"serve.drain_timeout", sc.DrainTimeout > 0, sc.DrainTimeout},
	} {
		if !l.ok {
			return fmt.Errorf("bad value for %s: %v (must be positive)", l.key, l.val)
		}
	}
	return nil
}

// lockDataDir makes sure one receiver owns a data folder: a second one would sweep the
// first one's uploads in flight from tmp/.
func lockDataDir(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("serve.data_dir %s: %w", dir, err)
	}
	lock := flock.New(filepath.Join(dir, "receiver.lock"))
	ok, err := lock.TryLock()
	if err != nil {
		return nil, fmt.Errorf("lock serve.data_dir %s: %w", dir, err)
	}
	if !ok {
		return nil, fmt.Errorf("serve.data_dir %s is in use by another cis490 serve (it holds %s): stop it or choose another data_dir",
			dir, lock.Path())
	}
	return func() { _ = lock.Unlock() }, nil
}

// ConfigError is a start-up failure that only a change of configuration fixes.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// checkGateSources refuses a gate source that does not exist. A source that exists
// but fails to load is retried, and the gate stays open meanwhile so a transient
// error never locks the fleet out (SPEC §3.2); a path that is not there at all is a
// typo, and would leave the gate open for good.
func checkGateSources(gc config.Gate) error {
	if gc.AllowlistFile != "" {
		if err := checkPath("serve.gate.allowlist_file", gc.AllowlistFile, "create it (one commit per line, # comments) or remove the key"); err != nil {
			return err
		}
	}
	if gc.GitDir != "" {
		if err := checkPath("serve.gate.git_dir", gc.GitDir, "point it at a local clone of the lab's repository or remove the key"); err != nil {
			return err
		}
	}
	return nil
}

func checkPath(key, path, ifMissing string) error {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: %w; %s", key, err, ifMissing)
	default:
		return fmt.Errorf("%s: %w; the receiver must be able to read it: check its permissions, and note that cis490-receiver.service sees no home folders (ProtectHome=yes): keep it under /etc/cis490, /srv or /var/lib/cis490", key, err)
	}
}

func newGate(gc config.Gate, log zerolog.Logger) *gate.Gate {
	var sources []gate.Source
	if gc.AllowlistFile != "" {
		sources = append(sources, gate.NewFileSource(gc.AllowlistFile))
	}
	if gc.GitDir != "" {
		sources = append(sources, gate.NewGitSource(gc.GitDir, gc.GitRef, gc.GitDepth))
	}
	return gate.New(sources, gate.Options{Refresh: gc.Refresh, Logger: log})
}

func announce(log zerolog.Logger, cfg config.Config, addr net.Addr, g *gate.Gate) {
	ev := log.Info().Str("addr", addr.String()).Str("data_dir", cfg.Serve.DataDir).
		Bool("tls", cfg.Serve.TLS.CertFile != "").Bool("mtls", cfg.Serve.TLS.ClientCAFile != "").
		Int("allowlist", g.Stats().Entries).Str("config", cfg.File).Str("storage", cfg.Serve.Storage.Backend)
	ev.Msg("receiver listening")
	if cfg.Serve.TokensFile == "" {
		log.Warn().Str("addr", addr.String()).Msg("OPEN MODE: no serve.tokens_file, so no authentication: any local process can" +
			" upload as any host (identity comes from " + "X-Cis490-Host" + "). Fine for trying cis490; never for a real fleet.")
	} else if cfg.Serve.TLS.CertFile == "" {
		log.Warn().Msg("no TLS: bearer tokens cross the network in clear text. Set serve.tls.cert_file and key_file")
	}
	if len(g.Stats().Sources) == 0 {
		log.Info().Msg("version gate open: no serve.gate.allowlist_file or git_dir; commits are recorded, not checked")
	}
}

// listen binds addr, holding the connections to conns' cap (those still in their TLS
// handshake count) and serving TLS when tlsCfg is set.
func listen(addr string, tlsCfg *tls.Config, conns *connLimiter) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (serve.listen): %w", addr, err)
	}
	ln = conns.listen(ln)
	if tlsCfg == nil {
		return ln, nil
	}
	return tls.NewListener(ln, tlsCfg), nil
}

// serverTLS is the receiver's TLS configuration: its certificate loaded per
// handshake (serverCert), client certificates verified when given. When the receiver
// is the lab's CA, openCA adds the revocation check.
func serverTLS(tc config.TLS, log zerolog.Logger) (*tls.Config, *serverCert, error) {
	cert, err := loadServerCert(tc.CertFile, tc.KeyFile, log)
	if err != nil {
		return nil, nil, err
	}
	cfg := &tls.Config{GetCertificate: cert.get, MinVersion: tls.VersionTLS12}
	if tc.ClientCAFile != "" {
		pem, err := os.ReadFile(tc.ClientCAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("serve.tls.client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("serve.tls.client_ca_file %s: no PEM certificate in it", tc.ClientCAFile)
		}
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
		cfg.ClientCAs = pool
		// A certificate given is verified by crypto/tls: it sends the alert that tells
		// the client what is wrong and fills the verified chains the handlers check;
		// tlsRefusals indexes its refusals (tlsrefused.go). Not required here: /healthz
		// takes none (SPEC §3.1), so the routes that need one refuse a request without
		// it (needsClientCert).
	}
	return cfg, cert, nil
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// bucket is the object store episodes go to with serve.storage.backend = "s3". Its
// failed requests are counted once the metrics exist (errors).
type bucket struct {
	store  *objstore.Store
	errors *atomic.Pointer[Metrics]
}

// openBucket reads the store's credentials and CA; it makes no request.
func openBucket(sc config.Storage, clock func() time.Time, log zerolog.Logger) (bucket, error) {
	if sc.Backend != config.BackendS3 {
		return bucket{}, nil
	}
	metrics := new(atomic.Pointer[Metrics])
	st, err := objstore.New(sc, objstore.Options{Logger: log, Now: clock, OnError: func(op string) {
		if m := metrics.Load(); m != nil {
			m.StorageError(op)
		}
	}})
	if err != nil {
		return bucket{}, err
	}
	return bucket{store: st, errors: metrics}, nil
}

// startEpisodes is where the receiver keeps episodes: the bucket once it is probed
// (an unreachable one is logged, and uploads get 503 until it answers), else the
// data folder.
func startEpisodes(ctx context.Context, v checked, data *store.Store, metrics *Metrics) store.Episodes {
	if v.bucket.store == nil {
		return data
	}
	v.bucket.errors.Store(metrics)
	for _, op := range objstore.Ops {
		metrics.storageErrors.WithLabelValues(op) // shown at 0 from the start
	}
	_ = v.bucket.store.Start(ctx) // logged by the store; retried by the uploads
	return v.bucket.store
}

func (b bucket) close() {
	if b.store != nil {
		b.store.Close()
	}
}
