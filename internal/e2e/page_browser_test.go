package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/doctor"
	"github.com/cis490/cis490/internal/index"
	"github.com/cis490/cis490/internal/testpki"
)

// The fleet page (SPEC §3.5) in a real headless Chromium, against the real `cis490
// serve` over TLS, on a fleet the test writes into the data folder before the
// receiver starts: what the maintainer sees each morning, and what they click.

// brokenHint is the failing check's hint: the exact command the host page must show.
const brokenHint = "sudo install -d -o cis490 -g cis490 -m 0750 /var/spool/cis490/outbox"

// pageFleetRows are the rows the fleet page lists, worst first (SPEC §5.3, fleethealth
// rank): critical alerting hosts (by name), warning ones, silenced, then ok.
var pageFleetRows = []pageRow{
	{"lab-broken", "alerting"},  // its doctor report fails: report-failing (critical)
	{"lab-quiet", "alerting"},   // nothing for 2 h: silent (critical)
	{"lab-refused", "alerting"}, // three 426 since its last 2xx, the latest a minute ago: fatal-only (critical)
	{"lab-warn", "alerting"},    // its doctor report warns: report-warning (warning)
	{"lab-hush", "silenced"},    // silent, under a silence
	{"lab-ok-a", "ok"},
	{"lab-ok-b", "ok"},
	{"pi", "ok"}, // the receiver's own row: up, room on its disk, its gate loaded
}

// pageRow is one row of #fleet as the browser shows it.
type pageRow struct {
	Host   string `json:"host"`
	Status string `json:"status"` // data-status, and the status word shown
}

// pageFleet is the data folder, configuration and tokens of a receiver whose fleet the
// test wrote, before its `cis490 serve` starts.
type pageFleet struct {
	dir, data, cfg string
	env            []string
	now            time.Time
	admin          string // the admin token, for the sign-in form
	server         testpki.Pair
}

// writePageFleet writes the configuration (TLS with a test CA's certificate, a tokens
// file with an admin token and a token for each host, a gate allow-list) and the fleet:
// index lines, doctor reports, and a silence made with `cis490 alerts silence`. Open:
// no tokens file and no TLS (open mode, on loopback), the same fleet.
func writePageFleet(t *testing.T, open bool) *pageFleet {
	t.Helper()
	dir := t.TempDir()
	f := &pageFleet{dir: dir, data: filepath.Join(dir, "data"), cfg: filepath.Join(dir, "lab-host.toml"),
		env: append(Env(t), "CIS490_HOST=pi"), now: time.Now().UTC()}
	allow := filepath.Join(dir, "allowlist")
	require.NoError(t, os.WriteFile(allow, []byte(commitAllowed+"\n"), 0o600))
	auth := ""
	if !open {
		f.server = testpki.NewCA(t, "lab").Server("pi")
		auth = fmt.Sprintf("tokens_file = %q\n\n[serve.tls]\ncert_file = %q\nkey_file = %q\n",
			filepath.Join(dir, "tokens.toml"), f.server.CertFile, f.server.KeyFile)
	}
	require.NoError(t, os.WriteFile(f.cfg, []byte(fmt.Sprintf(`
[serve]
listen = "127.0.0.1:0"
data_dir = %q
# the Pi's own row stays ok on a CI disk with little room
min_free_bytes = "1MiB"
%s
[serve.gate]
allowlist_file = %q

[fleet_health]
syslog = false
`, f.data, auth, allow)), 0o600))

	if !open {
		res := f.cis490(t, "token", "new", "--admin", "alice")
		require.Equal(t, 0, res.Code, res.Stderr)
		f.admin = strings.TrimSpace(res.Stdout)
		for _, r := range pageFleetRows {
			if r.Host == "pi" {
				continue
			}
			res := f.cis490(t, "token", "new", "--host", r.Host)
			require.Equal(t, 0, res.Code, res.Stderr)
		}
	}

	ago := func(d time.Duration) time.Time { return f.now.Add(-d) }
	var lines []index.Entry
	healthy := func(host string) {
		lines = append(lines,
			hit(host, "heartbeat", 204, ago(20*time.Minute)),
			hit(host, "episodes", 201, ago(19*time.Minute)),
			hit(host, "host-health", 204, ago(18*time.Minute)),
			hit(host, "heartbeat", 204, ago(2*time.Minute)))
	}
	healthy("lab-ok-a")
	healthy("lab-ok-b")
	healthy("lab-broken")
	healthy("lab-warn")
	for host, last := range map[string]time.Duration{"lab-quiet": 2 * time.Hour, "lab-hush": 3 * time.Hour} {
		lines = append(lines,
			hit(host, "heartbeat", 204, ago(last+2*time.Minute)),
			hit(host, "episodes", 201, ago(last+time.Minute)),
			hit(host, "host-health", 204, ago(last)))
	}
	lines = append(lines,
		hit("lab-refused", "episodes", 201, ago(5*time.Hour)),
		hit("lab-refused", "host-health", 204, ago(30*time.Minute)))
	for _, d := range []time.Duration{10 * time.Minute, 6 * time.Minute, time.Minute} {
		e := hit("lab-refused", "heartbeat", 426, ago(d))
		e.Commit = commitRefused
		e.Error = "commit abcdef0 is not on the receiver's allow-list: install a release build (`cis490 update`)"
		lines = append(lines, e)
	}
	writeIndex(t, f.data, lines)

	ok := []doctor.Check{
		{ID: "config", Status: doctor.OK, Summary: "configuration loads"},
		{ID: "client-cert", Status: doctor.OK, Summary: "certificate valid for 20 more days",
			Details: map[string]any{"not_after": f.now.Add(20*24*time.Hour + time.Hour).Format(time.RFC3339)}},
	}
	for host, at := range map[string]time.Duration{"lab-ok-a": 18 * time.Minute, "lab-ok-b": 18 * time.Minute,
		"lab-quiet": 2 * time.Hour, "lab-hush": 3 * time.Hour, "lab-refused": 30 * time.Minute} {
		writeReport(t, f.data, host, doctor.OK, ago(at), ok)
	}
	writeReport(t, f.data, "lab-broken", doctor.Fail, ago(18*time.Minute), append(ok[:1:1],
		doctor.Check{ID: "spool", Status: doctor.Fail, Summary: "the outbox /var/spool/cis490/outbox is missing", Hint: brokenHint}))
	writeReport(t, f.data, "lab-warn", doctor.Warn, ago(18*time.Minute), append(ok[:1:1],
		doctor.Check{ID: "clock", Status: doctor.Warn, Summary: "the clock is 2m10s ahead of the receiver's", Hint: "sudo timedatectl set-ntp true"}))

	res := f.cis490(t, "alerts", "silence", "--host", "lab-hush", "--for", "4h", "--reason", "moving racks")
	require.Equal(t, 0, res.Code, res.Stderr)
	return f
}

func (f *pageFleet) cis490(t *testing.T, args ...string) Result {
	t.Helper()
	return Run(t, bin, f.env, nil, append([]string{"--config", f.cfg}, args...)...)
}

// hit is an index line of a request the receiver answered, stamped with an allowed
// build.
func hit(host, route string, status int, at time.Time) index.Entry {
	method := map[string]string{"heartbeat": "POST", "episodes": "PUT", "host-health": "PUT"}[route]
	e := index.Entry{TS: at, Host: host, Route: route, Method: method, Status: status,
		Commit: commitAllowed, Stamped: true, DurMS: 3.5, Remote: "127.0.0.1:40000"}
	if route == "episodes" && status/100 == 2 {
		e.Bytes, e.SHA256 = 4096, sum([]byte(host+at.String()))
	}
	return e
}

// writeIndex appends lines to index/<UTC day>.jsonl, each in its own day's file.
func writeIndex(t *testing.T, data string, lines []index.Entry) {
	t.Helper()
	dir := filepath.Join(data, "index")
	require.NoError(t, os.MkdirAll(dir, 0o750))
	for _, e := range lines {
		b, err := json.Marshal(e)
		require.NoError(t, err)
		path := filepath.Join(dir, e.TS.UTC().Format("2006-01-02")+".jsonl")
		out, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
		require.NoError(t, err)
		_, err = out.Write(append(b, '\n'))
		require.NoError(t, err)
		require.NoError(t, out.Close())
	}
}

// writeReport stores host's doctor report as the receiver does: the `doctor --json`
// document plus received_at.
func writeReport(t *testing.T, data, host string, status doctor.Status, at time.Time, checks []doctor.Check) {
	t.Helper()
	dir := filepath.Join(data, "host-health")
	require.NoError(t, os.MkdirAll(dir, 0o750))
	doc := struct {
		doctor.Report
		ReceivedAt time.Time `json:"received_at"`
	}{doctor.Report{Schema: doctor.Schema, Host: host, Version: "v0.0.0-e2e", Commit: commitAllowed,
		GeneratedAt: at, Status: status, Checks: checks}, at}
	b, err := json.Marshal(doc)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, host+".json"), b, 0o640))
}

// screenshotDir is where the screenshots land for CI to keep: dist/screenshots/ at the
// repository's root (dist/ is git-ignored).
func screenshotDir() string { return filepath.Join(repoRoot(), "dist", "screenshots") }

// fleetRows reads #fleet's rows in order: each row's host and data-status, and the
// status word it shows, which must say the same (a colour is never alone).
func fleetRows(t *testing.T, b *browser) []pageRow {
	t.Helper()
	type shown struct {
		pageRow
		Word string `json:"word"`
		Link string `json:"link"`
	}
	rows := eval[[]shown](b, `[...document.querySelectorAll('#fleet tr[data-host]')].map(r => ({
		host: r.dataset.host, status: r.dataset.status,
		word: (r.querySelector('.status') || {textContent: ''}).textContent.trim(),
		link: (r.querySelector('a[href^="/hosts/"]') || {}).getAttribute?.('href') || ''}))`)
	out := []pageRow{}
	for _, r := range rows {
		assert.Equal(t, r.Status, r.Word, "%s: the status word says what data-status does", r.Host)
		assert.Equal(t, "/hosts/"+r.Host, r.Link, "%s: the host name links to its page", r.Host)
		out = append(out, r.pageRow)
	}
	return out
}

func rowsWhere(keep func(pageRow) bool) []pageRow {
	out := []pageRow{}
	for _, r := range pageFleetRows {
		if keep(r) {
			out = append(out, r)
		}
	}
	return out
}

// setRow is pageFleetRows with host's status changed, in the order the page sorts.
func withStatus(host, status string) []pageRow {
	var alerting, silenced, ok []pageRow
	for _, r := range pageFleetRows {
		if r.Host == host {
			r.Status = status
		}
		switch r.Status {
		case "alerting":
			alerting = append(alerting, r)
		case "silenced":
			silenced = append(silenced, r)
		default:
			ok = append(ok, r)
		}
	}
	return append(append(alerting, silenced...), ok...)
}

// The maintainer's morning, in a real browser: sign in (a wrong token first), the
// fleet worst first with the right words, the filters, the failing host's hint,
// silencing it from its page and ending the silence, signing out; the accessibility
// basics on every page; screenshots at desktop and phone sizes.
func TestFleetPageInBrowser(t *testing.T) {
	t.Parallel()
	f := writePageFleet(t, false)
	srv := StartServe(t, bin, f.env, "https", "--config", f.cfg)
	b := newBrowser(t, spkiHash(t, f.server.CertFile))
	base := srv.URL

	// Signed out, every page leads to the sign-in form, which remembers where to.
	require.Equal(t, "/signin", b.open(base+"/"), "the fleet page without a session")
	require.Equal(t, "/signin?next=%2Fhosts%2Flab-broken", b.open(base+"/hosts/lab-broken"), "a host page without a session")
	checkAccessible(t, b, "sign-in page")

	b.do("wrong token", chromedp.SendKeys(chromedp.ID("token"), "c490a_not-the-admin-token"))
	assert.Equal(t, "/signin", b.submit("#signin [type=submit]"), "a wrong token signs nobody in")
	assert.NotEmpty(t, eval[string](b, `(document.querySelector('#signin-error[role=alert]') || {textContent: ''}).textContent.trim()`),
		"the sign-in page says the token was refused")
	assert.Zero(t, eval[int](b, `document.querySelectorAll('#signout, #fleet, #checks').length`), "no page behind it")
	assert.Equal(t, "", eval[string](b, `document.getElementById('token').value`), "the refused token is not written back into the page")

	b.do("admin token", chromedp.SendKeys(chromedp.ID("token"), f.admin))
	require.Equal(t, "/hosts/lab-broken", b.submit("#signin [type=submit]"), "signed in, on the page asked for first")
	assert.NotContains(t, eval[string](b, `document.documentElement.outerHTML`), f.admin, "the token is nowhere in the page")
	require.Equal(t, "/", b.open(base+"/"))

	assert.Equal(t, pageFleetRows, fleetRows(t, b), "worst first, each with its word")
	checkAccessible(t, b, "fleet page")
	assert.Zero(t, b.screenshot(filepath.Join(screenshotDir(), "fleet-1280x800.png"), 1280, 800, false), "fleet-1280x800: the page scrolls sideways")
	assert.Zero(t, b.screenshot(filepath.Join(screenshotDir(), "fleet-390x844.png"), 390, 844, true), "fleet-390x844: the page scrolls sideways")

	// The filter form: a status and part of a name.
	b.do("filter alerting lab-", chromedp.SetValue(chromedp.ID("status"), "alerting"),
		chromedp.Clear(chromedp.ID("q")), chromedp.SendKeys(chromedp.ID("q"), "lab-"))
	assert.Equal(t, "/?q=lab-&status=alerting", b.submit("#filter [type=submit]"))
	assert.Equal(t, rowsWhere(func(r pageRow) bool { return r.Status == "alerting" }), fleetRows(t, b))
	b.do("filter refused", chromedp.Clear(chromedp.ID("q")), chromedp.SendKeys(chromedp.ID("q"), "refused"))
	b.submit("#filter [type=submit]")
	assert.Equal(t, []pageRow{{"lab-refused", "alerting"}}, fleetRows(t, b))
	// And straight from a URL (a bookmark).
	b.open(base + "/?status=silenced")
	assert.Equal(t, []pageRow{{"lab-hush", "silenced"}}, fleetRows(t, b))
	b.open(base + "/?q=ok-")
	assert.Equal(t, rowsWhere(func(r pageRow) bool { return strings.HasPrefix(r.Host, "lab-ok-") }), fleetRows(t, b))

	// The failing host's page: its failing check, with the command that fixes it.
	b.open(base + "/")
	require.Equal(t, "/hosts/lab-broken", b.submit(`#fleet tr[data-host="lab-broken"] a[href="/hosts/lab-broken"]`))
	assert.Equal(t, "fail", eval[string](b, `document.querySelector('#checks tr[data-check="spool"]').dataset.status`))
	assert.Equal(t, brokenHint, eval[string](b, `document.querySelector('#checks tr[data-check="spool"] code.hint').textContent.trim()`))
	assert.Equal(t, "ok", eval[string](b, `document.querySelector('#checks tr[data-check="config"]').dataset.status`))
	assert.Equal(t, 4, eval[int](b, `document.querySelectorAll('#requests tbody tr time').length`), "its index lines of the window")
	assert.Equal(t, "alerting", eval[string](b, `document.querySelector('#host .status').textContent.trim()`))
	assert.Equal(t, 1, eval[int](b, `document.querySelectorAll('#alerts').length`), "its alert history")
	checkAccessible(t, b, "host page")
	assert.Zero(t, b.screenshot(filepath.Join(screenshotDir(), "host-1280x800.png"), 1280, 800, false), "host-1280x800: the page scrolls sideways")
	assert.Zero(t, b.screenshot(filepath.Join(screenshotDir(), "host-390x844.png"), 390, 844, true), "host-390x844: the page scrolls sideways")

	// Silence it for an hour from the form: back on its page, silenced on the fleet's.
	b.do("silence form", chromedp.SetValue(chromedp.ID("for"), "1h"),
		chromedp.SendKeys(chromedp.ID("reason"), "replacing its SD card"))
	require.Equal(t, "/hosts/lab-broken", b.submit("#silence [type=submit]"))
	assert.Equal(t, 1, eval[int](b, `document.querySelectorAll('#silences tr[data-silence] form.end-silence').length`), "the silence, with a form to end it")
	assert.Contains(t, eval[string](b, `document.querySelector('#silences').textContent`), "replacing its SD card")
	assert.Equal(t, "silenced", eval[string](b, `document.querySelector('#host .status').textContent.trim()`))
	b.open(base + "/")
	assert.Equal(t, withStatus("lab-broken", "silenced"), fleetRows(t, b))

	// End it: alerting again.
	b.open(base + "/hosts/lab-broken")
	require.Equal(t, "/hosts/lab-broken", b.submit("form.end-silence [type=submit]"))
	assert.Equal(t, 0, eval[int](b, `document.querySelectorAll('form.end-silence').length`))
	b.open(base + "/")
	assert.Equal(t, pageFleetRows, fleetRows(t, b))

	// Sign out: the pages need a sign-in again.
	assert.Equal(t, "/signin", b.submit("#signout [type=submit]"))
	require.Equal(t, "/signin", b.open(base+"/"), "signed out")
	assert.NotContains(t, srv.Logs(), f.admin, "no token in the receiver's log")
}

// Open mode (no tokens file, loopback only): no sign-in, and a banner that says so.
func TestFleetPageOpenModeInBrowser(t *testing.T) {
	t.Parallel()
	f := writePageFleet(t, true)
	srv := StartServe(t, bin, f.env, "http", "--config", f.cfg)
	b := newBrowser(t)

	require.Equal(t, "/", b.open(srv.URL+"/"), "no sign-in in open mode")
	assert.NotEmpty(t, eval[string](b, `(document.querySelector('#open-mode.banner') || {textContent: ''}).textContent.trim()`),
		"the banner says the page is open")
	assert.Equal(t, pageFleetRows, fleetRows(t, b))
	assert.Equal(t, 0, eval[int](b, `document.querySelectorAll('#signout, #signin').length`), "nobody to sign out")
	checkAccessible(t, b, "open-mode fleet page")
	assert.Equal(t, "/", b.open(srv.URL+"/signin"), "nothing to sign in to")

	require.Equal(t, "/hosts/lab-broken", b.open(srv.URL+"/hosts/lab-broken"))
	assert.NotEmpty(t, eval[string](b, `(document.querySelector('#open-mode.banner') || {textContent: ''}).textContent.trim()`), "on every page")
	assert.Equal(t, brokenHint, eval[string](b, `document.querySelector('#checks tr[data-check="spool"] code.hint').textContent.trim()`))
	checkAccessible(t, b, "open-mode host page")
}
