package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A real headless Chromium for the fleet page's tests, driven through the DevTools
// protocol (chromedp), and the accessibility maths its checks need.

// chromiumPath is the browser the tests drive: CIS490_CHROMIUM, else Debian's
// chromium. Without one the test skips, but under CI it fails: CI installs it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	path := os.Getenv("CIS490_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	found, err := exec.LookPath(path)
	if err == nil {
		return found
	}
	why := fmt.Sprintf("no Chromium at %s (%v): install the Debian package chromium (.ci/run does), or point CIS490_CHROMIUM at a Chromium or Chrome binary", path, err)
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
	return ""
}

// browser is one headless Chromium with one tab, killed when the test ends.
type browser struct {
	t   *testing.T
	ctx context.Context // the tab's; never with a deadline (that would stop the browser)
	// logs are Chromium's own stderr, for a failure's message.
	logs *lockedBuffer
}

// browserStep is how long one step (a navigation, a query, a screenshot) may take
// before the test fails instead of hanging.
const browserStep = 30 * time.Second

// newBrowser starts Chromium with a profile in a temp folder. trustSPKI are base64
// SHA-256 hashes of the public keys whose certificates Chromium accepts although no
// root it knows signed them (the test CA's server certificate).
func newBrowser(t *testing.T, trustSPKI ...string) *browser {
	t.Helper()
	logs := &lockedBuffer{}
	// A home of its own too: Chromium writes ~/.pki and ~/.cache, and the machine's
	// are no business of a test.
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.Env("HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "XDG_CACHE_HOME="+filepath.Join(home, ".cache")),
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root, where Chromium's sandbox cannot start
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-dev-shm-usage", true), // containers have a small /dev/shm
		chromedp.Flag("force-color-profile", "srgb"), // computed colours and screenshots in sRGB
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.UserDataDir(filepath.Join(dir, "profile")),
		chromedp.WindowSize(1280, 800),
		chromedp.CombinedOutput(logs),
	}
	if len(trustSPKI) > 0 {
		// Chromium honours this only with a user-data-dir of its own (set above): the
		// certificates of exactly these keys pass, every other one is still checked.
		opts = append(opts, chromedp.Flag("ignore-certificate-errors-spki-list", strings.Join(trustSPKI, ",")))
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	b := &browser{t: t, ctx: ctx, logs: logs}
	// The first action starts the browser, on a context without a deadline.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		require.NoError(t, err, "starting Chromium:\n%s", logs.String())
	case <-time.After(browserStep):
		t.Fatalf("Chromium did not start within %v:\n%s", browserStep, logs.String())
	}
	return b
}

// step runs one action with browserStep's deadline and returns its value.
func step[T any](b *browser, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStep)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	require.NoError(b.t, err, "%s", what)
	return v
}

// do runs actions that return nothing, as one step.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	step(b, what, chromedp.Steps(actions...))
}

// open navigates to url and waits for the page (after redirects) to load; it
// returns the path the browser ended on.
func (b *browser) open(url string) string {
	b.t.Helper()
	step(b, "open "+url, chromedp.NavigateResponse(url))
	return b.path()
}

// submit clicks sel (a form's button) and waits for the page the form leads to.
func (b *browser) submit(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStep)
	defer cancel()
	_, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel)))
	require.NoError(b.t, err, "submit with %s", sel)
	return b.path()
}

// path is the current page's path and query.
func (b *browser) path() string {
	b.t.Helper()
	return step(b, "location", chromedp.Evaluate[string](`location.pathname + location.search`))
}

// eval evaluates a JavaScript expression and decodes its value.
func eval[T any](b *browser, js string) T {
	b.t.Helper()
	return step(b, js, chromedp.Evaluate[T](js))
}

// screenshot writes a full-page PNG of the current page at this viewport size, and
// returns by how many CSS pixels the page is wider than the viewport (0: no
// sideways scrolling; a wide table scrolls inside its own box instead).
func (b *browser) screenshot(path string, width, height int64, mobile bool) int {
	b.t.Helper()
	var opts []chromedp.EmulateViewportOption
	if mobile {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulatePortrait, chromedp.EmulateScale(2))
	}
	// A reload lays the page out for the new size as a phone would load it (the
	// viewport meta tag applies at load).
	b.do("viewport", chromedp.EmulateViewport(width, height, opts...), chromedp.Reload())
	// clientWidth is the viewport's width; innerWidth is not: a phone widens its
	// layout viewport (zooms the page out) to fit content wider than the screen.
	overflow := eval[int](b, `Math.max(0, document.documentElement.scrollWidth - document.documentElement.clientWidth)`)
	// The whole page at the viewport's width: Chromium's own "full size" capture is
	// wider than the page under mobile emulation, blank beyond it.
	tall := eval[float64](b, `Math.max(window.innerHeight, document.documentElement.scrollHeight)`)
	png := step(b, "screenshot", func(ctx context.Context, tg *chromedp.Target) ([]byte, error) {
		r, err := cdp.Call(ctx, tg, page.CaptureScreenshot, page.CaptureScreenshotParams{
			Format: page.CaptureScreenshotFormatPng, CaptureBeyondViewport: &yes, FromSurface: &yes,
			Clip: &page.Viewport{Width: float64(width), Height: tall, Scale: 1}})
		return r.Data, err
	})
	// Whole or not at all, for CI to keep: written beside, then renamed.
	require.NoError(b.t, os.MkdirAll(filepath.Dir(path), 0o755))
	tmp, err := os.CreateTemp(filepath.Dir(path), ".shot-*.png")
	require.NoError(b.t, err)
	_, err = tmp.Write(png)
	require.NoError(b.t, errors.Join(err, tmp.Chmod(0o644), tmp.Close()))
	require.NoError(b.t, os.Rename(tmp.Name(), path))
	b.do("viewport reset", chromedp.EmulateViewport(1280, 800))
	return overflow
}

var yes = true

// spkiHash is what --ignore-certificate-errors-spki-list takes for a certificate:
// the base64 SHA-256 of its SubjectPublicKeyInfo.
func spkiHash(t *testing.T, certFile string) string {
	t.Helper()
	data, err := os.ReadFile(certFile)
	require.NoError(t, err)
	block, _ := pem.Decode(data)
	require.NotNil(t, block, "%s holds no PEM block", certFile)
	cert, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	h := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(h[:])
}

// lockedBuffer collects a process's output from another goroutine.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// rgba is a CSS colour as getComputedStyle gives it, channels 0–255, alpha 0–1.
type rgba struct{ R, G, B, A float64 }

var cssColor = regexp.MustCompile(`^rgba?\(\s*([\d.]+)[\s,]+([\d.]+)[\s,]+([\d.]+)(?:\s*[,/]\s*([\d.]+%?))?\s*\)$`)

// parseCSSColor reads the rgb()/rgba() strings Chromium's getComputedStyle answers
// for colours written as hex, rgb() or names.
func parseCSSColor(s string) (rgba, error) {
	m := cssColor.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return rgba{}, fmt.Errorf("colour %q is not rgb() or rgba(): write the page's colours as hex or rgb()", s)
	}
	var c rgba
	for i, p := range []*float64{&c.R, &c.G, &c.B} {
		v, err := strconv.ParseFloat(m[i+1], 64)
		if err != nil {
			return rgba{}, fmt.Errorf("colour %q: %w", s, err)
		}
		*p = v
	}
	c.A = 1
	if a := m[4]; a != "" {
		pct := strings.HasSuffix(a, "%")
		v, err := strconv.ParseFloat(strings.TrimSuffix(a, "%"), 64)
		if err != nil {
			return rgba{}, fmt.Errorf("colour %q: %w", s, err)
		}
		if pct {
			v /= 100
		}
		c.A = v
	}
	return c, nil
}

// String is c as CSS writes an opaque colour.
func (c rgba) String() string {
	if c.A == 1 {
		return fmt.Sprintf("#%02x%02x%02x", int(math.Round(c.R)), int(math.Round(c.G)), int(math.Round(c.B)))
	}
	return fmt.Sprintf("rgba(%g, %g, %g, %g)", c.R, c.G, c.B, c.A)
}

// over is c painted over an opaque background.
func (c rgba) over(bg rgba) rgba {
	mix := func(a, b float64) float64 { return a*c.A + b*(1-c.A) }
	return rgba{mix(c.R, bg.R), mix(c.G, bg.G), mix(c.B, bg.B), 1}
}

// luminance is WCAG 2's relative luminance of an opaque sRGB colour.
func (c rgba) luminance() float64 {
	lin := func(v float64) float64 {
		v /= 255
		if v <= 0.04045 {
			return v / 12.92
		}
		return math.Pow((v+0.055)/1.055, 2.4)
	}
	return 0.2126*lin(c.R) + 0.7152*lin(c.G) + 0.0722*lin(c.B)
}

// contrast is WCAG 2's contrast ratio of two opaque colours, 1 to 21.
func contrast(a, b rgba) float64 {
	la, lb := a.luminance(), b.luminance()
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

// effectiveColors is the text colour and the background an element's text is read
// on: bgs are the background colours from the element out to the root, painted
// over white (the canvas) from the outermost in, and the text over that.
func effectiveColors(fg string, bgs []string) (text, bg rgba, err error) {
	bg = rgba{255, 255, 255, 1}
	for i := len(bgs) - 1; i >= 0; i-- {
		c, err := parseCSSColor(bgs[i])
		if err != nil {
			return rgba{}, rgba{}, err
		}
		bg = c.over(bg)
	}
	c, err := parseCSSColor(fg)
	if err != nil {
		return rgba{}, rgba{}, err
	}
	return c.over(bg), bg, nil
}

func TestContrastMaths(t *testing.T) {
	t.Parallel()
	black, white := rgba{0, 0, 0, 1}, rgba{255, 255, 255, 1}
	assert.InDelta(t, 21, contrast(black, white), 1e-9)
	assert.InDelta(t, 21, contrast(white, black), 1e-9, "symmetric")
	assert.InDelta(t, 1, contrast(white, white), 1e-9)
	// Known pairs (WebAIM's contrast checker): #767676 on white is the lightest grey
	// that passes AA, #777777 fails it.
	assert.InDelta(t, 4.54, contrast(rgba{0x76, 0x76, 0x76, 1}, white), 0.01)
	assert.Less(t, contrast(rgba{0x77, 0x77, 0x77, 1}, white), 4.5)
	assert.InDelta(t, 4.0, contrast(rgba{255, 0, 0, 1}, white), 0.01)      // #FF0000
	assert.InDelta(t, 2.44, contrast(rgba{0, 0, 255, 1}, black), 0.01)     // #0000FF on black
	assert.InDelta(t, 8.59, contrast(rgba{0, 0, 255, 1}, white), 0.01)     // #0000FF on white
	assert.InDelta(t, 0.2126, rgba{255, 0, 0, 1}.luminance(), 1e-4)        // red's coefficient
	assert.InDelta(t, 0.0, rgba{0, 0, 0, 1}.luminance(), 1e-12)            // black
	assert.InDelta(t, 0.2159, rgba{0x80, 0x80, 0x80, 1}.luminance(), 1e-3) // mid grey

	for in, want := range map[string]rgba{
		"rgb(1, 2, 3)":            {1, 2, 3, 1},
		"rgba(10, 20, 30, 0.5)":   {10, 20, 30, 0.5},
		"rgb(10 20 30 / 25%)":     {10, 20, 30, 0.25},
		" rgba(0, 0, 0, 0) ":      {0, 0, 0, 0},
		"rgb(12.5, 0, 255)":       {12.5, 0, 255, 1},
		"rgba(255, 255, 255, 1)":  {255, 255, 255, 1},
		"rgb(255 255 255 / 0.75)": {255, 255, 255, 0.75},
	} {
		got, err := parseCSSColor(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "red", "#fff", "oklch(0.5 0.1 30)", "rgb(1, 2)"} {
		_, err := parseCSSColor(bad)
		assert.Error(t, err, bad)
	}

	// A badge with no background of its own is read on its ancestors'; a transparent
	// layer changes nothing, a half-transparent one mixes.
	text, bg, err := effectiveColors("rgb(0, 0, 0)", []string{"rgba(0, 0, 0, 0)", "rgb(255, 255, 255)"})
	require.NoError(t, err)
	assert.Equal(t, white, bg)
	assert.Equal(t, black, text)
	_, bg, err = effectiveColors("rgb(0, 0, 0)", []string{"rgba(0, 0, 0, 0.5)"})
	require.NoError(t, err)
	assert.Equal(t, rgba{127.5, 127.5, 127.5, 1}, bg, "half black over the white canvas")
	text, _, err = effectiveColors("rgba(255, 255, 255, 0.5)", []string{"rgb(0, 0, 0)"})
	require.NoError(t, err)
	assert.Equal(t, rgba{127.5, 127.5, 127.5, 1}, text, "half-transparent text mixes with what is under it")
}

// unlabelledJS lists the form controls a screen reader could not name: an input,
// select or textarea (not hidden, not a button) without a non-empty <label> (for= or
// around it) or aria-label, and a button without text.
const unlabelledJS = `(() => {
	const bad = [];
	const named = el => [...(el.labels || [])].some(l => l.textContent.trim() !== '') ||
		(el.getAttribute('aria-label') || '').trim() !== '' ||
		(el.getAttribute('aria-labelledby') || '').split(/\s+/).some(id => id && document.getElementById(id) && document.getElementById(id).textContent.trim() !== '');
	for (const el of document.querySelectorAll('input, select, textarea')) {
		const type = (el.getAttribute('type') || '').toLowerCase();
		if (type === 'hidden') continue;
		if (['submit', 'button', 'reset'].includes(type)) {
			if ((el.value || '').trim() === '' && !named(el)) bad.push(el.outerHTML.slice(0, 160));
			continue;
		}
		if (!named(el)) bad.push(el.outerHTML.slice(0, 160));
	}
	for (const el of document.querySelectorAll('button')) {
		if (el.textContent.trim() === '' && !named(el)) bad.push(el.outerHTML.slice(0, 160));
	}
	return bad;
})()`

// tablesJS describes each table: its id, its header cells, and for #fleet the
// column headers of its head.
const tablesJS = `[...document.querySelectorAll('table')].map(t => ({
	id: t.id, th: t.querySelectorAll('th').length,
	col: t.querySelectorAll('thead th[scope=col]').length,
	empty: [...t.querySelectorAll('thead th')].filter(th => th.textContent.trim() === '' && !(th.getAttribute('aria-label') || '').trim()).length}))`

// badgesJS is one element per status class (status-ok, status-alerting, …): its
// text colour and the background colours from it out to the root.
const badgesJS = `(() => {
	const seen = new Map();
	for (const el of document.querySelectorAll('.status')) {
		const cls = [...el.classList].find(c => c.startsWith('status-')) || 'status';
		if (seen.has(cls)) continue;
		const bgs = [];
		for (let n = el; n; n = n.parentElement) bgs.push(getComputedStyle(n).backgroundColor);
		seen.set(cls, {cls, text: el.textContent.trim(), fg: getComputedStyle(el).color, bgs});
	}
	return [...seen.values()];
})()`

// checkAccessible checks the basics on the current page: every form control has a
// label, every table header cells, and every status badge a contrast of at least
// 4.5:1 (WCAG AA for text) between its text and what it is read on.
func checkAccessible(t *testing.T, b *browser, page string) {
	t.Helper()
	assert.Empty(t, eval[[]string](b, unlabelledJS), "%s: form controls without a label", page)

	type table struct {
		ID         string `json:"id"`
		TH         int    `json:"th"`
		Col, Empty int
	}
	for _, tb := range eval[[]table](b, tablesJS) {
		assert.Positive(t, tb.TH, "%s: table #%s has no header cells", page, tb.ID)
		assert.Zero(t, tb.Empty, "%s: table #%s has header cells with no text", page, tb.ID)
		if tb.ID == "fleet" {
			assert.Positive(t, tb.Col, "%s: #fleet's head has no th scope=col", page)
		}
	}

	type badge struct {
		Class string   `json:"cls"`
		Text  string   `json:"text"`
		FG    string   `json:"fg"`
		BGs   []string `json:"bgs"`
	}
	for _, bd := range eval[[]badge](b, badgesJS) {
		text, bg, err := effectiveColors(bd.FG, bd.BGs)
		if !assert.NoError(t, err, "%s: .%s", page, bd.Class) {
			continue
		}
		ratio := contrast(text, bg)
		t.Logf("%s: .%s %q: %v on %v: %.2f:1", page, bd.Class, bd.Text, text, bg, ratio)
		assert.GreaterOrEqual(t, ratio, 4.5, "%s: .%s (%q) is %v on %v: contrast %.2f:1, under 4.5:1", page, bd.Class, bd.Text, text, bg, ratio)
	}
}
