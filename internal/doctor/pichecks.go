package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cis490/cis490/internal/buildinfo"
	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/fleethealth"
	"github.com/cis490/cis490/internal/humanize"
	"github.com/cis490/cis490/internal/localprobe"
	"github.com/cis490/cis490/internal/protocol"
	"github.com/cis490/cis490/internal/tokens"
)

// The receiver's checks (SPEC §4.3, "On the Pi").

const (
	receiverUnit = "cis490-receiver.service"
	statusHint   = "`systemctl status cis490-receiver` and `journalctl -u cis490-receiver`"
)

func checkReceiverService(ctx context.Context, systemdDir string, systemctl func(context.Context, ...string) (string, error)) Check {
	if _, err := os.Stat(systemdDir); err != nil {
		return skipped("not checked: systemd is not running on this machine (" + systemdDir + " does not exist)")
	}
	// is-active exits non-zero unless active: the word it prints is the answer.
	state, err := systemctl(ctx, "is-active", receiverUnit)
	if errors.Is(err, exec.ErrNotFound) {
		return failed("systemctl not found, yet "+systemdDir+" exists", "check the PATH cis490 runs with", nil)
	}
	state = orUnknown(state)
	details := map[string]any{"unit": receiverUnit, "active": state}
	switch state {
	case "active", "reloading":
		return ok(receiverUnit+" is "+state, details)
	case "not-found":
		return failed(receiverUnit+" is not installed", "`cis490 install receiver` installs and starts it", details)
	}
	return failed(receiverUnit+" is "+state, "start it with `systemctl enable --now cis490-receiver`; if it stops again, "+statusHint+" say why", details)
}

func checkHealthz(cfg config.Config, health func() (*protocol.Health, error), build buildinfo.Info) Check {
	url, _ := localprobe.URL(cfg.Serve)
	details := map[string]any{"url": url}
	h, err := health()
	switch {
	case errors.Is(err, localprobe.ErrClientCertRequired):
		return warned("the receiver is up (it showed serve.tls.cert_file), but it wants a client certificate at every handshake, /healthz included, "+
			"so neither doctor nor fleet health can see its gate sources",
			"the running receiver is an older cis490, which asks every client for a certificate: restart it on this binary (`systemctl restart cis490-receiver`), whose /healthz takes none (SPEC §3.1)",
			details)
	case err != nil:
		return failed(err.Error(), "start it (`systemctl enable --now cis490-receiver`); if it does not stay up, `journalctl -u cis490-receiver` says why", details)
	}
	details["status"], details["version"], details["commit"] = h.Status, h.Version, h.Commit
	if h.Status == protocol.HealthDraining {
		return warned("the receiver at "+url+" is shutting down", "if it does not come back within a minute: "+statusHint, details)
	}
	summary := fmt.Sprintf("%s answered: %s, cis490 %s, commit %s", url, h.Status, h.Version, short(h.Commit))
	if h.Commit != build.Commit || h.Version != build.Version {
		return warned(summary+fmt.Sprintf("; this cis490 is %s, commit %s", build.Version, short(build.Commit)),
			"the receiver still runs the binary it started with: restart it after an upgrade (`systemctl restart cis490-receiver`)", details)
	}
	return ok(summary, details)
}

// checkDataDir proves the data folder takes new files the way the receiver writes
// them: a file in tmp/, synced, then removed.
func checkDataDir(dataDir string) Check {
	tmp := filepath.Join(dataDir, "tmp")
	details := map[string]any{"data_dir": dataDir}
	hint := "the receiver creates " + dataDir + " at its first start (serve.data_dir); it must be writable by the user cis490 serve runs as"
	if info, err := os.Stat(dataDir); errors.Is(err, fs.ErrNotExist) {
		return failed(dataDir+" does not exist: has `cis490 serve` ever run with this configuration?", hint, details)
	} else if err != nil || !info.IsDir() {
		return failed(dataDir+" cannot be used as the data folder: "+describeStat(err), hint, details)
	}
	f, err := os.CreateTemp(tmp, ".doctor-*")
	if err != nil {
		return failed("cannot create a file in "+tmp+": "+reason(err), hint, details)
	}
	defer os.Remove(f.Name())
	_, err = f.WriteString("doctor\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return failed("cannot write and sync a file in "+tmp+": "+reason(err), "check the disk (see data-disk) and `dmesg` for I/O errors", details)
	}
	if err := os.Remove(f.Name()); err != nil {
		return failed("cannot remove a file from "+tmp+": "+reason(err), hint, details)
	}
	return ok(dataDir+" is writable", details)
}

func describeStat(err error) string {
	if err != nil {
		return reason(err)
	}
	return "not a folder"
}

// checkDataDisk holds the data folder's free space against min_free_bytes: under it
// every upload is refused 507; under twice it, fleet health calls the disk low.
func checkDataDisk(sc config.Serve) Check {
	path := existingAncestor(sc.DataDir)
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return failed("cannot read free space of "+path+": "+err.Error(), "check serve.data_dir", map[string]any{"path": path})
	}
	free, total := st.Bavail*uint64(st.Bsize), st.Blocks*uint64(st.Bsize)
	floor := uint64(max(sc.MinFreeBytes, 0))
	details := map[string]any{"path": path, "free_bytes": free, "total_bytes": total, "min_free_bytes": floor}
	summary := fmt.Sprintf("%s free of %s on %s; serve.min_free_bytes is %s", humanize.Bytes(free), humanize.Bytes(total), path, humanize.Bytes(floor))
	hint := "free space on " + path + " (old episodes under " + filepath.Join(sc.DataDir, "episodes") + ", old index files), grow the file system, or lower serve.min_free_bytes"
	switch {
	case free < floor:
		return failed(summary+": every upload is refused 507", hint, details)
	case free < 2*floor:
		return warned(summary+": less than twice that is left", hint, details)
	}
	return ok(summary, details)
}

// checkGateSources reads each gate source's state from /healthz: the receiver's own
// view, which is the one requests are judged by.
func checkGateSources(cfg config.Config, health func() (*protocol.Health, error), now time.Time) Check {
	h, err := health()
	if err != nil || h.Status != protocol.HealthOK {
		return skipped("not checked: the receiver's /healthz did not say (see receiver-healthz)")
	}
	if len(h.Gate) == 0 {
		return ok("the version gate is open: no serve.gate.allowlist_file or git_dir, so commits are recorded, not checked", nil)
	}
	staleAfter := cfg.FleetHealth.GateStaleAfter
	details := map[string]any{"gate_stale_after": staleAfter.String()}
	worst := OK
	var parts []string
	for _, src := range h.Gate {
		details[src.Name] = map[string]any{"loaded": src.Loaded, "last_ok": nilIfZero(src.LastOK), "failing_since": nilIfZero(src.FailingSince)}
		var s Status
		var part string
		switch {
		case !src.Loaded:
			s, part = Fail, src.Name+" never loaded"
		case src.FailingSince.IsZero():
			s, part = OK, fmt.Sprintf("%s refreshed %s ago", src.Name, roughAge(now.Sub(src.LastOK)))
		case now.Sub(src.FailingSince) >= staleAfter:
			s, part = Fail, fmt.Sprintf("%s has failed to refresh for %s (over fleet_health.gate_stale_after, %s)", src.Name, roughAge(now.Sub(src.FailingSince)), staleAfter)
		default:
			s, part = Warn, fmt.Sprintf("%s has failed to refresh for %s", src.Name, roughAge(now.Sub(src.FailingSince)))
		}
		if s.rank() > worst.rank() {
			worst = s
		}
		parts = append(parts, part)
	}
	summary := strings.Join(parts, "; ")
	hint := "/healthz shows no errors: `journalctl -u cis490-receiver` says why the source fails; check serve.gate.allowlist_file, git_dir and git_ref in " +
		configName(cfg.File) + ". A failing source keeps its last good list"
	switch worst {
	case Fail:
		return failed(summary, hint, details)
	case Warn:
		return warned(summary, hint, details)
	}
	return ok(summary, details)
}

func checkServerCert(tc config.TLS, now time.Time) Check {
	if tc.CertFile == "" {
		return skipped("no TLS (serve.tls.cert_file): the receiver speaks plain HTTP, fine on loopback only")
	}
	details := map[string]any{"cert_file": tc.CertFile, "key_file": tc.KeyFile}
	pair, err := tls.LoadX509KeyPair(tc.CertFile, tc.KeyFile)
	if err != nil {
		return failed("serve.tls.cert_file and key_file are not a certificate and its key: "+err.Error(),
			"put the receiver's certificate and its key in serve.tls.cert_file and key_file, then `systemctl restart cis490-receiver`", details)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return failed("serve.tls.cert_file: "+err.Error(), "replace the certificate in serve.tls.cert_file", details)
		}
	}
	details["subject"], details["dns_names"], details["issuer"] = leaf.Subject.CommonName, leaf.DNSNames, leaf.Issuer.CommonName
	return expiry("the receiver's certificate ("+leaf.Subject.CommonName+")", leaf, now,
		"renew the receiver's certificate in serve.tls.cert_file, then `systemctl restart cis490-receiver`", details)
}

// checkClientCA looks at every CA certificate in client_ca_file: one that expires
// takes every client certificate it signed down with it.
func checkClientCA(caFile string, now time.Time) Check {
	if caFile == "" {
		return skipped("no mTLS (serve.tls.client_ca_file): clients are told apart by their tokens alone")
	}
	details := map[string]any{"client_ca_file": caFile}
	data, err := os.ReadFile(caFile)
	if err != nil {
		return failed("cannot read serve.tls.client_ca_file: "+reason(err), "point serve.tls.client_ca_file at the fleet CA's certificate (PEM)", details)
	}
	var certs []*x509.Certificate
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return failed(fmt.Sprintf("serve.tls.client_ca_file: certificate %d: %v", len(certs)+1, err), "replace the damaged certificate in "+caFile, details)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return failed("serve.tls.client_ca_file holds no PEM certificate", "point serve.tls.client_ca_file at the fleet CA's certificate (PEM)", details)
	}
	var results []Check
	var list []map[string]any
	for _, cert := range certs {
		list = append(list, map[string]any{"subject": cert.Subject.CommonName, "not_after": cert.NotAfter.UTC()})
		results = append(results, expiry("CA "+cert.Subject.CommonName, cert, now,
			"add a new CA certificate to serve.tls.client_ca_file and issue the lab hosts new client certificates from it before "+day(cert.NotAfter), nil))
	}
	details["certificates"] = list
	worst := results[0]
	for _, r := range results[1:] {
		if r.Status.rank() > worst.Status.rank() {
			worst = r
		}
	}
	if worst.Status == OK {
		return ok(fmt.Sprintf("%d CA certificate(s), the first to expire on %s", len(certs), day(firstExpiry(certs))), details)
	}
	worst.Details = details
	return worst
}

func firstExpiry(certs []*x509.Certificate) time.Time {
	first := certs[0].NotAfter
	for _, c := range certs[1:] {
		if c.NotAfter.Before(first) {
			first = c.NotAfter
		}
	}
	return first
}

// expiry judges one certificate's dates: failed when not valid now, warned within
// certWarnBefore of its end.
func expiry(what string, cert *x509.Certificate, now time.Time, renew string, details map[string]any) Check {
	left := cert.NotAfter.Sub(now)
	if details != nil {
		details["not_after"], details["days_left"] = cert.NotAfter.UTC(), int(left.Hours()/24)
	}
	switch {
	case now.Before(cert.NotBefore):
		return failed(what+" is not valid before "+cert.NotBefore.UTC().Format(time.RFC3339)+": is this machine's clock right?",
			"set the clock (`timedatectl set-ntp true`), or "+renew, details)
	case left <= 0:
		return failed(what+" expired on "+day(cert.NotAfter), renew, details)
	case left < certWarnBefore:
		return warned(fmt.Sprintf("%s expires in %s, on %s", what, roughly(left), day(cert.NotAfter)), renew, details)
	}
	return ok(what+" is valid until "+day(cert.NotAfter), details)
}

func checkTokensFile(sc config.Serve) Check {
	if sc.TokensFile == "" {
		return skipped("not checked: no serve.tokens_file (open mode: the receiver listens on loopback only and believes " + protocol.HeaderHost + ")")
	}
	details := map[string]any{"tokens_file": sc.TokensFile}
	set, err := tokens.Load(sc.TokensFile)
	if err != nil {
		return failed(err.Error(), "fix or restore "+sc.TokensFile+" (serve.tokens_file); `cis490 token new --host NAME` writes entries the receiver reads", details)
	}
	details["tokens"] = set.Len()
	if set.Len() == 0 {
		return warned(sc.TokensFile+" has no tokens: every /v1 request is refused 401", "mint them with `cis490 token new --host NAME` (and `--admin WHO`)", details)
	}
	return ok(fmt.Sprintf("%s holds %d token(s)", sc.TokensFile, set.Len()), details)
}

const fleetHealthUnit = "cis490-fleet-health"

// staleRuns is how many timer periods may pass without a fleet-health run: one
// missed run is a hiccup, three mean nobody is watching the fleet.
const staleRuns = 3

// checkFleetHealthRuns asks when fleet health last ran: systemd knows when its
// service last exited and how, and every run that is not a dry run saves
// fleet-health.json, which also counts runs from cron or by hand.
func checkFleetHealthRuns(ctx context.Context, dataDir, systemdDir string, systemctl func(context.Context, ...string) (string, error), now time.Time) Check {
	state := fleethealth.StatePath(dataDir)
	details := map[string]any{"state_file": state}
	var last time.Time
	if info, err := os.Stat(state); err == nil {
		last = info.ModTime()
		details["state_saved_at"] = last.UTC()
	}
	enable := "`systemctl enable --now " + fleetHealthUnit + ".timer` (or `cis490 install receiver`)"
	if _, err := os.Stat(systemdDir); err == nil {
		timer, err := systemctl(ctx, "is-active", fleetHealthUnit+".timer")
		if errors.Is(err, exec.ErrNotFound) {
			return failed("systemctl not found, yet "+systemdDir+" exists", "check the PATH cis490 runs with", details)
		}
		timer = orUnknown(timer)
		details["timer"] = timer
		if timer != "active" {
			return failed(fleetHealthUnit+".timer is "+timer+": nobody checks the fleet", enable, details)
		}
		out, err := systemctl(ctx, "show", fleetHealthUnit+".service", "--timestamp=utc", "-p", "ExecMainExitTimestamp", "-p", "ExecMainStatus")
		if err == nil {
			exited, status := parseShow(out)
			if !exited.IsZero() {
				details["exited_at"], details["exit_status"] = exited.UTC(), status
				if status != "0" {
					return failed(fmt.Sprintf("the last fleet-health check, at %s, exited with status %s: it could not run", exited.UTC().Format(time.RFC3339), status),
						"`journalctl -u "+fleetHealthUnit+"` says why", details)
				}
				if exited.After(last) {
					last = exited
				}
			}
		}
	}
	period := fleethealth.RunInterval
	if last.IsZero() {
		return failed("fleet-health check has never run here ("+state+" does not exist): nobody checks the fleet",
			enable+"; without systemd, run `cis490 fleet-health check` every "+roughAge(period)+" from cron", details)
	}
	age := now.Sub(last)
	details["last_run"], details["age_seconds"] = last.UTC(), age.Round(time.Second).Seconds()
	if age > staleRuns*period {
		return failed(fmt.Sprintf("fleet-health check last ran %s ago, at %s; it should run every %s", roughAge(age), last.UTC().Format(time.RFC3339), roughAge(period)),
			"`systemctl status "+fleetHealthUnit+".timer` and `journalctl -u "+fleetHealthUnit+"`; "+enable, details)
	}
	return ok(fmt.Sprintf("fleet-health check last ran %s ago", roughAge(age)), details)
}

// parseShow reads `systemctl show --timestamp=utc -p ExecMainExitTimestamp -p
// ExecMainStatus`: an empty timestamp means the service never ran.
func parseShow(out string) (exited time.Time, status string) {
	for _, line := range strings.Split(out, "\n") {
		key, val, _ := strings.Cut(strings.TrimSpace(line), "=")
		switch key {
		case "ExecMainExitTimestamp":
			exited, _ = time.Parse("Mon 2006-01-02 15:04:05 MST", val)
		case "ExecMainStatus":
			status = val
		}
	}
	return exited, status
}

// roughAge is an age as a person says it: seconds, minutes, hours or days.
func roughAge(d time.Duration) string {
	switch {
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < 2*time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}

func nilIfZero(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC()
}
