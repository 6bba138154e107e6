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
	Host        string      `mapstructure:"host"`
	Log         Log         `mapstructure:"log"`
	Receiver    Receiver    `mapstructure:"receiver"`
	Ship        Ship        `mapstructure:"ship"`
	Serve       Serve       `mapstructure:"serve"`
	FleetHealth FleetHealth `mapstructure:"fleet_health"`
	Doctor      Doctor      `mapstructure:"doctor"`

	// File is the configuration file that was loaded, "" when defaults alone apply.
	File string `mapstructure:"-"`
}

type Log struct {
	Level  string `mapstructure:"level"`
	Format string `mapstructure:"format"`
}

// Receiver is how a client reaches the Pi.
type Receiver struct {
	URL       string        `mapstructure:"url"`
	TokenFile string        `mapstructure:"token_file"`
	CAFile    string        `mapstructure:"ca_file"`
	CertFile  string        `mapstructure:"cert_file"`
	KeyFile   string        `mapstructure:"key_file"`
	Timeout   time.Duration `mapstructure:"timeout"`
}

type Ship struct {
	SpoolDir string        `mapstructure:"spool_dir"`
	MaxAge   time.Duration `mapstructure:"max_age"`
	KeepSent time.Duration `mapstructure:"keep_sent"`
	Retries  int           `mapstructure:"retries"`
}

type Serve struct {
	Listen          string   `mapstructure:"listen"`
	DataDir         string   `mapstructure:"data_dir"`
	TokensFile      string   `mapstructure:"tokens_file"`
	MaxEpisodeBytes ByteSize `mapstructure:"max_episode_bytes"`
	MaxReportBytes  ByteSize `mapstructure:"max_report_bytes"`
	MinFreeBytes    ByteSize `mapstructure:"min_free_bytes"`
	MetricsListen   string   `mapstructure:"metrics_listen"`
	TLS             TLS      `mapstructure:"tls"`
	Gate            Gate     `mapstructure:"gate"`
}

type TLS struct {
	CertFile     string `mapstructure:"cert_file"`
	KeyFile      string `mapstructure:"key_file"`
	ClientCAFile string `mapstructure:"client_ca_file"`
}

type Gate struct {
	AllowlistFile string        `mapstructure:"allowlist_file"`
	GitDir        string        `mapstructure:"git_dir"`
	GitRef        string        `mapstructure:"git_ref"`
	GitDepth      int           `mapstructure:"git_depth"`
	Refresh       time.Duration `mapstructure:"refresh"`
	Unstamped     string        `mapstructure:"unstamped"`
}

type FleetHealth struct {
	AlertsFile       string        `mapstructure:"alerts_file"`
	SilentAfter      time.Duration `mapstructure:"silent_after"`
	ActiveWindow     time.Duration `mapstructure:"active_window"`
	FatalWindow      time.Duration `mapstructure:"fatal_window"`
	FatalMinRequests int           `mapstructure:"fatal_min_requests"`
	ReportStaleAfter time.Duration `mapstructure:"report_stale_after"`
	RepeatInterval   time.Duration `mapstructure:"repeat_interval"`
	Syslog           bool          `mapstructure:"syslog"`
	AlertmanagerURL  string        `mapstructure:"alertmanager_url"`
	WebhookURL       string        `mapstructure:"webhook_url"`
}

type Doctor struct {
	Timeout time.Duration `mapstructure:"timeout"`
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
			Gate: Gate{
				GitRef:    "main",
				GitDepth:  100,
				Refresh:   time.Minute,
				Unstamped: UnstampedAllow,
			},
		},
		FleetHealth: FleetHealth{
			SilentAfter:      30 * time.Minute,
			ActiveWindow:     24 * time.Hour,
			FatalWindow:      time.Hour,
			FatalMinRequests: 3,
			ReportStaleAfter: 36 * time.Hour,
			RepeatInterval:   time.Hour,
			Syslog:           true,
		},
		Doctor: Doctor{Timeout: 10 * time.Second},
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
