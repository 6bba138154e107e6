// Package objstore keeps episodes in an S3-compatible bucket (serve.storage.backend =
// "s3", SPEC §3.4), with the promises the data folder keeps (internal/store): the body
// is streamed and hashed as it arrives, only a body whose SHA-256 matches becomes
// visible, exactly one copy is stored however many identical uploads race, and a store
// that is down is ErrUnavailable (the receiver's 503 with Retry-After), never a lost
// episode.
//
// Layout: <prefix>episodes/<host>/<sha256> is the tarball, with its sidecar's fields as
// object metadata (x-amz-meta-cis490-*), and <prefix>episodes/<host>/<sha256>.json the
// sidecar, the same JSON as on disk (store.EpisodeMeta), written after the tarball and
// rewritten from its metadata by a retry that finds it missing.
//
// A body of known length goes to the store as one conditional PutObject that carries
// its declared SHA-256 (x-amz-checksum-sha256) when the store refuses a wrong one (the
// start-up probe tries) and the body is at most serve.storage.single_put_max; any
// other body, as a multipart upload of part_size parts completed only once its
// SHA-256 matched. Either way the bytes stream from the request to the store, never
// held whole (put.go).
//
// The API, stable for the receiver, doctor and `cis490 storage migrate`:
//
//	st, err := objstore.New(cfg.Serve.Storage, objstore.Options{Logger: log}) // config errors only; no request
//	err = st.Start(ctx)                  // probe the bucket, abort stale multipart uploads, sweep hourly
//	defer st.Close()
//	st.Stored / Has / PutEpisode / Stat  // store.Episodes; PutEpisode's meta keeps ReceivedAt, Commit, Remote
//	rc, err := st.Open(ctx, host, sha)   // read an episode back (migrate verifies it); ErrNotStored
//	c := st.Check(ctx)                   // Reachable, Writable, ConditionalWrites, Checksums, Server, Err (doctor)
//	h := st.Health()                     // OK, LastOK, LastError, FailingSince, Ready (fleet health's storage-down)
//	h.Wire()                             // the same without error text, as /healthz's "storage"
//	n, err := st.SweepStale(ctx)         // abort multipart uploads older than Options.StaleAfter
//	key := st.Key(host, sha)             // <prefix>episodes/<host>/<sha256>
//
// Every error of a request the store failed (unreachable, 5xx, refused, stalled) wraps
// store.ErrUnavailable; errors of the body (digest mismatch, too large, the client
// gone) are the store package's, as with the data folder.
package objstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/rs/zerolog"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/protocol"
	"github.com/cis490/cis490/internal/store"
)

// Options are a Store's parts beyond the configuration.
type Options struct {
	Logger zerolog.Logger
	// Now is the clock SweepStale judges an upload's age by; nil means time.Now. The
	// receiver passes its test clock ($CIS490_TEST_CLOCK_OFFSET).
	Now func() time.Time
	// StallTimeout is how long a request to the store may make no progress (take no
	// byte of a part, or send no answer) before it is cut; 0 means one minute.
	StallTimeout time.Duration
	// StaleAfter is the age of a multipart upload that SweepStale aborts; 0 means 1h.
	StaleAfter time.Duration
	// SweepEvery is how often Start's goroutine sweeps; 0 means StaleAfter.
	SweepEvery time.Duration
	// OnError is called with the operation ("head", "put", "create", "upload_part",
	// "complete", "abort", "list", "get", "delete") of each request the store failed:
	// the receiver counts them in cis490_storage_errors_total.
	OnError func(op string)
	// NoConditionalWrites makes the store behave as if the server ignored
	// If-None-Match, whatever the probe finds: tests of the fallback use it.
	NoConditionalWrites bool
}

// Ops are the operations Options.OnError names.
var Ops = []string{opHead, opPut, opCreate, opUploadPart, opComplete, opAbort, opList, opGet, opDelete}

const (
	opHead       = "head"
	opPut        = "put"
	opCreate     = "create"
	opUploadPart = "upload_part"
	opComplete   = "complete"
	opAbort      = "abort"
	opList       = "list"
	opGet        = "get"
	opDelete     = "delete"
)

// Store is an S3 bucket holding episodes; it is safe for concurrent use.
type Store struct {
	cfg      config.Storage
	prefix   string // cfg.ObjectPrefix()
	partSize int64
	// singlePutMax is serve.storage.single_put_max: the largest body sent as one
	// PutObject where the store checks checksums.
	singlePutMax int64
	client       *s3.Client
	log          zerolog.Logger
	opts         Options

	// buffers hold the parts of bodies without a Content-Length (see put.go).
	buffers chan []byte

	// readyMu serialises the probe that makes the store ready (start.go) and guards
	// what it found; ready and conditional are read without it (/healthz must not
	// wait for a probe of a store that does not answer).
	readyMu     sync.Mutex
	lastAttempt time.Time
	lastLogged  time.Time
	lastErr     error
	ready       atomic.Bool
	conditional atomic.Bool // the server refuses a second If-None-Match: * write
	checksums   atomic.Bool // it refuses a PutObject with a wrong x-amz-checksum-sha256

	locks    keyLocks    // per episode, when the server lacks conditional writes
	inflight inflightSet // upload ids of this process's multipart uploads
	state    healthState

	// bg is the context of the sweeps, ended by Close, which waits for them (wg).
	bg     context.Context
	stopBg context.CancelFunc
	wg     sync.WaitGroup
}

var _ store.Episodes = (*Store)(nil)

// chunkedBuffers bounds the part buffers that uploads without a Content-Length hold
// at once; the others stream each part from the request body.
const chunkedBuffers = 2

// New checks the configuration and reads the credentials file; it makes no request
// (Start does). Its errors are configuration errors: what to fix is in them.
func New(cfg config.Storage, opts Options) (*Store, error) {
	if cfg.Backend != config.BackendS3 {
		return nil, fmt.Errorf("serve.storage.backend is %q, not s3", cfg.Backend)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.StallTimeout <= 0 {
		opts.StallTimeout = time.Minute
	}
	if opts.StaleAfter <= 0 {
		opts.StaleAfter = time.Hour
	}
	if opts.SweepEvery <= 0 {
		opts.SweepEvery = opts.StaleAfter
	}
	creds, err := loadCredentials(cfg.CredentialsFile, cfg.Profile)
	if err != nil {
		return nil, err
	}
	httpClient, err := newHTTPClient(cfg.CAFile)
	if err != nil {
		return nil, err
	}
	so := s3.Options{
		Region:       cfg.Region,
		UsePathStyle: cfg.PathStyle,
		Credentials:  creds,
		HTTPClient:   httpClient,
		// Three tries for the small requests; parts stream from the client and cannot
		// be sent twice (uploadPart sends each once). No retry quota: when the store is
		// down every request should say so, not a quota.
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 3
			o.RateLimiter = ratelimit.None
		}),
		// The SHA-256 of the whole body is ours to check; the SDK's default CRC32 of each
		// request needs a seekable body or TLS trailers, which not every store takes.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		// No Expect: 100-continue: one round trip less a part, and some stores mishandle it.
		ContinueHeaderThresholdBytes: -1,
	}
	if cfg.Endpoint != "" {
		so.BaseEndpoint = aws.String(cfg.Endpoint)
	}
	s := &Store{
		cfg:          cfg,
		prefix:       cfg.ObjectPrefix(),
		partSize:     int64(cfg.PartSize),
		singlePutMax: int64(cfg.SinglePutMax),
		client:       s3.New(so),
		log:          opts.Logger.With().Str("component", "objstore").Str("bucket", cfg.Bucket).Logger(),
		opts:         opts,
		buffers:      make(chan []byte, chunkedBuffers),
	}
	for range chunkedBuffers {
		s.buffers <- nil // allocated on first use
	}
	s.bg, s.stopBg = context.WithCancel(context.Background())
	s.state.backend = config.BackendS3
	return s, nil
}

// newHTTPClient is the transport to the store: its CA when ca_file names one, HTTP/1.1
// (one connection a part in flight, no HTTP/2 flow-control window between the
// client's body and the store), and bounded dialing; requests are bounded by their
// contexts (see put.go's stall watchdog).
func newHTTPClient(caFile string) (*http.Client, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("serve.storage.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("serve.storage.ca_file %s: no PEM certificate in it", caFile)
		}
		tlsCfg.RootCAs = pool
	}
	return &http.Client{Transport: &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tlsCfg,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConns:        64,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		// Larger than the default 4 KiB: fewer system calls a part.
		WriteBufferSize: 64 << 10,
		ReadBufferSize:  64 << 10,
	}}, nil
}

// Key is the object key of host's episode sha.
func (s *Store) Key(host, sha string) string { return s.prefix + "episodes/" + host + "/" + sha }

// Close stops the sweeps and waits for them.
func (s *Store) Close() {
	s.stopBg()
	s.wg.Wait()
}

// Health is the store's state as its requests found it.
func (s *Store) Health() Health {
	h := s.state.get()
	h.ConditionalWrites, h.Checksums, h.Ready = s.conditional.Load(), s.checksums.Load(), s.ready.Load()
	return h
}

// Health is what fleet health and /healthz read of the store: LastError stays on the
// Pi (Wire leaves it out).
type Health struct {
	Backend           string
	OK                bool
	LastOK            time.Time
	LastError         string
	LastErrorAt       time.Time
	FailingSince      time.Time
	ConditionalWrites bool
	// Checksums is whether the store refuses a body whose x-amz-checksum-sha256 is
	// wrong: episodes up to single_put_max then go in one PutObject.
	Checksums bool
	// Ready is whether the start-up probe has succeeded: until it has, uploads are
	// answered 503.
	Ready bool
}

// Wire is h as /healthz says it (protocol.StorageHealth: no error text).
func (h Health) Wire() *protocol.StorageHealth {
	return &protocol.StorageHealth{Backend: h.Backend, OK: h.OK, LastOK: h.LastOK.UTC(), FailingSince: h.FailingSince.UTC(), ConditionalWrites: h.ConditionalWrites}
}

// unavailable wraps a failed request as store.ErrUnavailable, unless it failed because
// ctx ended (the client went away, or shutdown): then it is ctx's error.
func unavailable(ctx context.Context, op, key string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%s %s: %w", op, key, cerr)
	}
	return fmt.Errorf("%w: %s %s: %w", store.ErrUnavailable, op, key, err)
}

var errStalled = errors.New("the store took nothing for the stall timeout")
