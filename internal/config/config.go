// Package config is the lab-host.toml schema: its keys and defaults, where the file is
// looked for, and how it is loaded and checked (SPEC §2).
package config

import (
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Config is the whole of lab-host.toml. Every command reads the sections it needs.
type Config struct {
	Host        string      `mapstructure:"host" help:"this machine's name in the fleet (default: the short host name, lowercased)"`
	Log         Log         `mapstructure:"log" help:"logging"`
	Receiver    Receiver    `mapstructure:"receiver" help:"how this machine reaches the receiver (ship, health ship, doctor, alerts tail --remote)"`
	Ship        Ship        `mapstructure:"ship" help:"the spool, and what cis490 ship does with it"`
	Serve       Serve       `mapstructure:"serve" help:"the receiver, cis490 serve (on the Pi)"`
	FleetHealth FleetHealth `mapstructure:"fleet_health" help:"cis490 fleet-health check (on the Pi): which hosts are silent or failing"`
	Doctor      Doctor      `mapstructure:"doctor" help:"cis490 doctor, the host's self-check"`
	Update      Update      `mapstructure:"update" help:"cis490 update (cis490-autoupdate.timer): which signed releases this host runs"`

	// File is the configuration file that was loaded, "" when defaults alone apply.
	File string `mapstructure:"-"`
}

type Log struct {
	Level  string `mapstructure:"level" help:"log level: debug, info, warn or error"`
	Format string `mapstructure:"format" help:"log format: auto (human on a terminal, JSON otherwise), console or json"`
}

// Receiver is how a client reaches the Pi.
type Receiver struct {
	URL       string        `mapstructure:"url" help:"the receiver's base URL, e.g. https://pi.lab:8490"`
	TokenFile string        `mapstructure:"token_file" help:"file holding this host's bearer token (from cis490 token new), mode 0600"`
	CAFile    string        `mapstructure:"ca_file" help:"CA that signed the receiver's certificate (empty: the system's CAs)"`
	CertFile  string        `mapstructure:"cert_file" help:"client certificate for mTLS; its CN or a DNS SAN is this host's name"`
	KeyFile   string        `mapstructure:"key_file" help:"private key of cert_file"`
	Timeout   time.Duration `mapstructure:"timeout" help:"how long the receiver may take to connect, to answer a request once it is sent, and to acknowledge bytes sent (after which a cut upload resumes)"`
}

type Ship struct {
	SpoolDir string        `mapstructure:"spool_dir" help:"spool folder: producers drop tarballs in outbox/, ship moves them to sent/ or rejected/"`
	MaxAge   time.Duration `mapstructure:"max_age" help:"a tarball still in outbox/ after this long moves to rejected/"`
	KeepSent time.Duration `mapstructure:"keep_sent" help:"shipped tarballs stay in sent/ this long, then are pruned"`
	Retries  int           `mapstructure:"retries" help:"retries after a network error, 429 or 5xx, with exponential backoff"`
}

type Serve struct {
	Listen          string   `mapstructure:"listen" help:"address to listen on (empty: 127.0.0.1:8490 without TLS and tokens, else :8490)"`
	DataDir         string   `mapstructure:"data_dir" help:"episodes, reports, index and alerts (default: $STATE_DIRECTORY, /var/lib/cis490 as root, else $XDG_STATE_HOME/cis490)"`
	TokensFile      string   `mapstructure:"tokens_file" help:"hashed bearer tokens (cis490 token new); empty means open mode, loopback only"`
	MaxEpisodeBytes ByteSize `mapstructure:"max_episode_bytes" help:"largest episode accepted (413 above)"`
	MaxReportBytes  ByteSize `mapstructure:"max_report_bytes" help:"largest doctor report accepted (413 above)"`
	MinFreeBytes    ByteSize `mapstructure:"min_free_bytes" help:"answer 507 rather than let free disk space fall below this"`
	MetricsListen   string   `mapstructure:"metrics_listen" help:"address of the Prometheus /metrics listener; empty means off"`
	// Limits (SPEC §3.3): what a client may hold of the receiver at once.
	MaxUploads        int           `mapstructure:"max_uploads" help:"uploads received at once; one more waits a second for a slot, then gets 503 with Retry-After"`
	MaxUploadsPerHost int           `mapstructure:"max_uploads_per_host" help:"uploads received at once from one host (those of one episode count as one); more get 503"`
	MaxConnections    int           `mapstructure:"max_connections" help:"connections held open at once; more wait in the kernel's accept queue (keep LimitNOFILE= above it)"`
	DrainTimeout      time.Duration `mapstructure:"drain_timeout" help:"on SIGTERM, how long uploads in flight may take to finish before they are cut; keep it 10s under the unit's TimeoutStopSec (90s)"`
	PartialTTL        time.Duration `mapstructure:"partial_ttl" help:"how long what arrived of a cut upload is kept in data_dir/tmp/partial/ for the host to resume it (backend fs only)"`
	TLS               TLS           `mapstructure:"tls" help:"the receiver's TLS; without cert_file it speaks plain HTTP"`
	Gate              Gate          `mapstructure:"gate" help:"the version gate: which commits may upload"`
	CA                CA            `mapstructure:"ca" help:"the lab's CA, when the receiver is one (cis490 ca init: serve.data_dir/ca/)"`
	Update            ServeUpdate   `mapstructure:"update" help:"releases published to this receiver (cis490 release publish)"`
	Storage           Storage       `mapstructure:"storage" help:"where episodes are kept: the data folder or an S3-compatible bucket"`
}

type TLS struct {
	CertFile     string `mapstructure:"cert_file" help:"server certificate (PEM)"`
	KeyFile      string `mapstructure:"key_file" help:"server private key (PEM)"`
	ClientCAFile string `mapstructure:"client_ca_file" help:"CA(s) of client certificates (mTLS): a certificate sent is verified at the handshake, and one is required on every /v1 route (not /healthz)"`
}

type Gate struct {
	AllowlistFile string        `mapstructure:"allowlist_file" help:"allowed commits, one per line, # comments; reloaded when it changes"`
	GitDir        string        `mapstructure:"git_dir" help:"local git repository whose newest git_depth commits of git_ref are allowed too"`
	GitRef        string        `mapstructure:"git_ref" help:"the ref of git_dir whose commits are allowed"`
	GitDepth      int           `mapstructure:"git_depth" help:"how many commits of git_ref are allowed"`
	Refresh       time.Duration `mapstructure:"refresh" help:"how often the allow-list sources are reloaded"`
	Unstamped     string        `mapstructure:"unstamped" help:"requests without a commit stamp: allow, or reject (428)"`
}

type FleetHealth struct {
	AlertsFile       string        `mapstructure:"alerts_file" help:"where alerts are appended (empty: <data_dir>/alerts.jsonl)"`
	SilentAfter      time.Duration `mapstructure:"silent_after" help:"a host active within active_window but quiet this long is silent"`
	ActiveWindow     time.Duration `mapstructure:"active_window" help:"a host quiet longer than this is no longer tracked; its alerts expire"`
	FatalWindow      time.Duration `mapstructure:"fatal_window" help:"fatal-only and unstamped fire only while the latest request is this recent"`
	FatalMinRequests int           `mapstructure:"fatal_min_requests" help:"this many gated requests, all 4xx since the last 2xx, make a host fatal-only"`
	ReportStaleAfter time.Duration `mapstructure:"report_stale_after" help:"an active host without a doctor report for this long is report-stale"`
	RepeatInterval   time.Duration `mapstructure:"repeat_interval" help:"a firing alert is repeated at most this often"`
	// GoneRepeatInterval spaces the repeats of a roster host quiet for longer than
	// active_window: still worth a daily reminder, not an hourly one.
	GoneRepeatInterval time.Duration `mapstructure:"gone_repeat_interval" help:"a silent alert of a roster host quiet longer than active_window is repeated at most this often"`
	GateStaleAfter     time.Duration `mapstructure:"gate_stale_after" help:"the receiver's own row is gate-stale when a gate source has failed to refresh for this long"`
	MaxSilence         time.Duration `mapstructure:"max_silence" help:"the longest a silence may last"`
	Syslog             bool          `mapstructure:"syslog" help:"send each notification to syslog too"`
	// SyslogSocket is the syslog daemon's unix datagram socket; "" means the
	// system's (/dev/log).
	SyslogSocket    string `mapstructure:"syslog_socket" help:"the syslog daemon's unix socket (empty: the system's, /dev/log)"`
	AlertmanagerURL string `mapstructure:"alertmanager_url" help:"Alertmanager to push alerts to (POST /api/v2/alerts); empty means none"`
	WebhookURL      string `mapstructure:"webhook_url" help:"URL each notification is POSTed to as JSON; empty means none"`
	// PushTimeout bounds each request to Alertmanager and the webhook.
	PushTimeout time.Duration `mapstructure:"push_timeout" help:"time limit of each push to Alertmanager or the webhook"`
}

type Doctor struct {
	Timeout time.Duration `mapstructure:"timeout" help:"time limit for all of doctor's checks together"`
}

// Gate policies for requests that carry no commit stamp.
const (
	UnstampedAllow  = "allow"
	UnstampedReject = "reject"
)

// DefaultPort is where the receiver listens unless told otherwise.
const DefaultPort = "8490"

// Default returns the configuration that applies when no file sets anything.
func Default() Config {
	return Config{
		Host: defaultHost(),
		Log:  Log{Level: "info", Format: "auto"},
		Receiver: Receiver{
			URL:     "http://127.0.0.1:" + DefaultPort,
			Timeout: 30 * time.Second,
		},
		Ship: Ship{
			SpoolDir: "/var/spool/cis490",
			MaxAge:   30 * 24 * time.Hour,
			KeepSent: 7 * 24 * time.Hour,
			Retries:  5,
		},
		Serve: Serve{
			DataDir:         defaultDataDir(),
			MaxEpisodeBytes: 8 * GiB,
			MaxReportBytes:  1 * MiB,
			MinFreeBytes:    512 * MiB,
			// 16 uploads, and 4 more racing their own retries, hold at most 24 MiB of
			// buffers (internal/store): the receiver stays under 64 MB whatever its
			// clients do (bench/README.md).
			MaxUploads:        16,
			MaxUploadsPerHost: 4,
			MaxConnections:    1024,
			DrainTimeout:      80 * time.Second,
			PartialTTL:        24 * time.Hour,
			Gate: Gate{
				GitRef:    "main",
				GitDepth:  100,
				Refresh:   time.Minute,
				Unstamped: UnstampedAllow,
			},
			CA:      CA{Lifetime: 720 * time.Hour, Bootstrap: BootstrapWhenNoneValid},
			Storage: defaultStorage(),
		},
		FleetHealth: FleetHealth{
			SilentAfter:        30 * time.Minute,
			ActiveWindow:       24 * time.Hour,
			FatalWindow:        time.Hour,
			FatalMinRequests:   3,
			ReportStaleAfter:   36 * time.Hour,
			RepeatInterval:     time.Hour,
			GoneRepeatInterval: 24 * time.Hour,
			GateStaleAfter:     15 * time.Minute,
			MaxSilence:         7 * 24 * time.Hour,
			Syslog:             true,
			PushTimeout:        10 * time.Second,
		},
		Doctor: Doctor{Timeout: 10 * time.Second},
		Update: Update{StateDir: defaultUpdateDir()},
	}
}

func defaultHost() string {
	name, err := os.Hostname()
	if err != nil {
		return ""
	}
	name, _, _ = strings.Cut(name, ".")
	return strings.ToLower(name)
}

// defaultDataDir follows where a service keeps state: systemd's StateDirectory= when it
// set one, /var/lib as root, the XDG state folder otherwise.
func defaultDataDir() string {
	if dir := os.Getenv("STATE_DIRECTORY"); dir != "" {
		dir, _, _ = strings.Cut(dir, ":")
		return dir
	}
	if os.Geteuid() == 0 {
		return "/var/lib/cis490"
	}
	if dir := os.Getenv("XDG_STATE_HOME"); dir != "" {
		return filepath.Join(dir, "cis490")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "cis490")
	}
	return filepath.Join(home, ".local", "state", "cis490")
}

// ListenAddr is where `serve` listens: the configured address, or loopback in open mode
// (no TLS, no tokens) and every interface once the receiver can tell callers apart.
func (s Serve) ListenAddr() string {
	if s.Listen != "" {
		return s.Listen
	}
	if s.TLS.CertFile == "" && s.TokensFile == "" {
		return "127.0.0.1:" + DefaultPort
	}
	return ":" + DefaultPort
}

// AlertsPath is fleet_health.alerts_file, or alerts.jsonl in the receiver's data folder.
func (c Config) AlertsPath() string {
	if c.FleetHealth.AlertsFile != "" {
		return c.FleetHealth.AlertsFile
	}
	return filepath.Join(c.Serve.DataDir, "alerts.jsonl")
}
