package web

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The status colours, and every other text colour of the style sheet, keep a WCAG
// contrast of at least 4.5:1 against their background. Read from the embedded
// page.css itself, so a colour cannot drift past it.

var (
	cssRuleRE = regexp.MustCompile(`([^{}]+)\{([^{}]*)\}`)
	cssDeclRE = regexp.MustCompile(`(?:^|;)\s*(color|background)\s*:\s*([^;]+)`)
	hexRE     = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)
)

type cssRule struct {
	selector          string
	color, background string
}

func cssColourRules(t *testing.T, css string) []cssRule {
	t.Helper()
	css = regexp.MustCompile(`(?s)/\*.*?\*/`).ReplaceAllString(css, "")
	var out []cssRule
	for _, m := range cssRuleRE.FindAllStringSubmatch(css, -1) {
		r := cssRule{selector: strings.TrimSpace(m[1])}
		for _, d := range cssDeclRE.FindAllStringSubmatch(m[2], -1) {
			v := strings.TrimSpace(d[2])
			require.Regexp(t, hexRE, v, "%s { %s: %s }: colours are #rrggbb, so this test can check them", r.selector, d[1], v)
			if d[1] == "color" {
				r.color = v
			} else {
				r.background = v
			}
		}
		if r.color != "" || r.background != "" {
			out = append(out, r)
		}
	}
	return out
}

func luminance(t *testing.T, hex string) float64 {
	t.Helper()
	var c [3]float64
	for i := range c {
		v, err := strconv.ParseUint(hex[1+2*i:3+2*i], 16, 8)
		require.NoError(t, err)
		s := float64(v) / 255
		if s <= 0.04045 {
			c[i] = s / 12.92
		} else {
			c[i] = math.Pow((s+0.055)/1.055, 2.4)
		}
	}
	return 0.2126*c[0] + 0.7152*c[1] + 0.0722*c[2]
}

func contrast(t *testing.T, fg, bg string) float64 {
	a, b := luminance(t, fg), luminance(t, bg)
	if a < b {
		a, b = b, a
	}
	return (a + 0.05) / (b + 0.05)
}

func TestContrastFormula(t *testing.T) {
	assert.InDelta(t, 21, contrast(t, "#000000", "#ffffff"), 0.01)
	assert.InDelta(t, 1, contrast(t, "#777777", "#777777"), 0.01)
	assert.InDelta(t, 4.48, contrast(t, "#777777", "#ffffff"), 0.01) // the classic near miss
}

func TestColourContrast(t *testing.T) {
	css, err := staticFS.ReadFile("static/page.css")
	require.NoError(t, err)
	rules := cssColourRules(t, string(css))
	var body cssRule
	seen := map[string]bool{}
	for _, r := range rules {
		seen[r.selector] = true
		if r.selector == "body" {
			body = r
		}
	}
	require.NotEmpty(t, body.color, "body sets the text colour")
	require.NotEmpty(t, body.background, "body sets the background")
	for _, status := range []string{"ok", "alerting", "silenced", "inactive", "fail", "warn", "skip", "unknown"} {
		assert.True(t, seen[".status-"+status], "page.css styles .status-%s", status)
	}
	for _, r := range rules {
		fg, bg := r.color, r.background
		if fg == "" {
			fg = body.color // text on this background is the body's colour
		}
		if bg == "" {
			bg = body.background
		}
		ratio := contrast(t, fg, bg)
		assert.GreaterOrEqual(t, ratio, 4.5, "%s: %s on %s is %.2f:1", r.selector, fg, bg, ratio)
		t.Logf("%-24s %s on %s: %.2f:1", r.selector, fg, bg, ratio)
	}
}
