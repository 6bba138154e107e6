package index

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sameEntry reports whether a and b are the same entry, their ts in the same zone.
func sameEntry(a, b Entry) bool {
	an, ao := a.TS.Zone()
	bn, bo := b.TS.Zone()
	if !a.TS.Equal(b.TS) || an != bn || ao != bo || a.TS.Location().String() != b.TS.Location().String() {
		return false
	}
	a.TS, b.TS = time.Time{}, time.Time{}
	return a == b
}

// plainDecode is what decodeLine must answer: encoding/json alone.
func plainDecode(line []byte) (Entry, bool) {
	var e Entry
	if json.Unmarshal(line, &e) != nil {
		return Entry{}, false
	}
	return e, !e.TS.IsZero()
}

// checkDecode fails t when decodeLine and encoding/json disagree on line, or when
// decodeFlat claims a line encoding/json would refuse or read otherwise.
func checkDecode(t *testing.T, line []byte) {
	t.Helper()
	want, wantOK := plainDecode(line)
	got, gotOK := decodeLine(line)
	if gotOK != wantOK || !sameEntry(got, want) {
		t.Fatalf("decodeLine(%q) = %+v, %v; encoding/json: %+v, %v", line, got, gotOK, want, wantOK)
	}
	var flat Entry
	if decodeFlat(line, &flat) {
		var std Entry
		if err := json.Unmarshal(line, &std); err != nil {
			t.Fatalf("decodeFlat took %q, which encoding/json refuses: %v", line, err)
		}
		if !sameEntry(flat, std) {
			t.Fatalf("decodeFlat(%q) = %+v; encoding/json: %+v", line, flat, std)
		}
	}
}

// The seed corpus is in testdata/fuzz/FuzzDecode as well: lines the fast path must
// decline (escapes, other zones, nested values, keys in another case) next to ones it
// takes.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"ts":"2026-11-28T00:00:02Z","id":"dc7k4apksdudt434hgjg","host":"lab-000","route":"episodes","method":"PUT","status":201,"bytes":5288125,"sha256":"000000000000000000000000000000000000000000000000cb0a6fbc1b820bc5","commit":"1234567890abcdef1234567890abcdef12345678","stamped":true,"dur_ms":323.22966244908935,"remote":"10.0.0.1:40882","error":""}`,
		`{"ts":"2026-11-28T10:00:00.123456789Z","host":"lab-07","route":"tls","status":0,"error":"unknown_ca","unverified":false}`,
		` { "ts" : "2026-11-28T10:00:00+05:00" , "status" : -0 , "dur_ms" : -1.5e-3 } ` + "\r",
		`{"ts":"2026-11-28T10:00:00Z","host":"lab\u002d07","route":"h\u00e9"}`,
		`{"TS":"2026-11-28T10:00:00Z","Host":"lab-07","ſtatus":3}`,
		`{"ts":"2026-11-28T10:00:00Z","future":{"x":[1,2,{"y":null}]},"n":1e400,"s":"x","b":true,"z":null}`,
		`{"ts":"2026-11-28T10:00:00Z","status":204.0,"bytes":1e3}`,
		`{"ts":"2026-11-28T10:00:00Z","status":99999999999999999999}`,
		`{"ts":"2026-11-28T10:00:00Z","ts":null,"host":null,"stamped":null}`,
		`{"ts":"2026-11-28T10:00:00Z",}`,
		`{"ts":"2026-11-28T10:00:00Z"}{}`,
		`{"ts":"2026-11-28T10:00:00Z","host":"\xff"}`,
		`{}`, `null`, `[]`, `"x"`, ``, `{"ts":"2026-11-2`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, line []byte) { checkDecode(t, line) })
}

// randomEntry makes an entry as the receiver could write one, some of its strings and
// numbers in forms the fast path declines.
func randomEntry(rng *rand.Rand, at time.Time) Entry {
	pick := func(s ...string) string { return s[rng.IntN(len(s))] }
	e := Entry{
		TS: at, Host: pick("lab-07", "LAB-08", "", "lab-ü", `lab"q`, "lab\\x", "lab\t9", "a.b-c"),
		Route:  pick("episodes", "heartbeat", "host-health", "whoami", "alerts", "tls", "fleet"),
		Method: pick("PUT", "POST", "GET", "DELETE"), Status: []int{0, 200, 201, 204, 400, 401, 409, 426, 507, 503}[rng.IntN(10)],
		Bytes: rng.Int64N(1 << 40), Commit: pick("", "1234567890abcdef1234567890abcdef12345678"), Stamped: rng.IntN(2) == 0,
		DurMS:  []float64{0, rng.Float64() * 1000, 1e-7, 1e21, math.MaxFloat64, -0.5}[rng.IntN(6)],
		Remote: fmt.Sprintf("10.0.%d.%d:%d", rng.IntN(4), rng.IntN(250), rng.IntN(65536)), Unverified: rng.IntN(5) == 0,
		Error: pick("", "unknown_ca", "commit not allowed: <b>&</b>", "line\nbreak", "\u2028", "\x00"),
	}
	if rng.IntN(2) == 0 {
		e.ID = fmt.Sprintf("c%019d", rng.Int64())
	}
	if rng.IntN(3) == 0 {
		e.SHA256 = fmt.Sprintf("%064x", rng.Uint64())
	}
	return e
}

// Every line the writer writes decodes as encoding/json decodes it, and the plain ones
// (ASCII without escapes: all the receiver writes in practice) take the fast path.
func TestDecodeMatchesEncodingJSONOnWrittenLines(t *testing.T) {
	dir := t.TempDir()
	w, err := OpenWriter(dir)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(17, 10))
	for i := range 20000 {
		at := day1.Add(time.Duration(i) * 4 * time.Second).Add(time.Duration(rng.IntN(1e9)))
		require.NoError(t, w.Append(randomEntry(rng, at)))
	}
	require.NoError(t, w.Close())
	files, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	require.NoError(t, err)
	var data []byte
	for _, p := range files {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		data = append(data, b...)
	}

	lines, flat := 0, 0
	for l := range bytes.Lines(data) {
		l = bytes.TrimSuffix(l, []byte{'\n'})
		checkDecode(t, l)
		lines++
		var e Entry
		plain := !bytes.ContainsAny(l, `\`) && !bytes.ContainsFunc(l, func(r rune) bool { return r >= 0x80 })
		if assert.Equal(t, plain, decodeFlat(l, &e), "a line without escapes or non-ASCII takes the fast path: %s", l) && plain {
			flat++
		}
	}
	assert.Equal(t, 20000, lines)
	assert.Greater(t, flat, 1000, "the random entries must give the fast path plain lines")
}

func TestDecodeDeclinesWhatItCannotProve(t *testing.T) {
	const ts = `"ts":"2026-11-28T10:00:00Z"`
	for _, tc := range []struct {
		name, line string
		flat, ok   bool
	}{
		{"plain", `{` + ts + `,"host":"lab-07","status":204,"stamped":true}`, true, true},
		{"unknown scalar fields", `{` + ts + `,"x":"y","n":-1.5E+3,"t":true,"f":false,"z":null}`, true, true},
		{"no ts", `{"host":"lab-07"}`, true, false},
		{"empty object", `{}`, true, false},
		{"escape in a string", `{` + ts + `,"host":"lab\u002d07"}`, false, true},
		{"non-ASCII", `{` + ts + `,"host":"läb"}`, false, true},
		{"upper-case key", `{` + ts + `,"HOST":"lab-07"}`, false, true},
		{"nested unknown field", `{` + ts + `,"x":{"y":1}}`, false, true},
		{"null for a field", `{` + ts + `,"status":null}`, false, true},
		{"another zone", `{"ts":"2026-11-28T10:00:00+05:00"}`, true, true},
		{"float for an int", `{` + ts + `,"status":204.0}`, false, false},
		{"int too long", `{` + ts + `,"bytes":1234567890123456789}`, false, true},
		{"float out of range", `{` + ts + `,"dur_ms":1e400}`, false, false},
		{"leading zero", `{` + ts + `,"status":0204}`, false, false},
		{"trailing comma", `{` + ts + `,}`, false, false},
		{"two objects", `{` + ts + `}{}`, false, false},
		{"a string for a number", `{` + ts + `,"status":"204"}`, false, false},
		{"bad ts", `{"ts":"yesterday"}`, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e Entry
			assert.Equal(t, tc.flat, decodeFlat([]byte(tc.line), &e))
			_, ok := decodeLine([]byte(tc.line))
			assert.Equal(t, tc.ok, ok)
			checkDecode(t, []byte(tc.line))
		})
	}
}

// benchLines are lines as a busy receiver writes them: a heartbeat and an episode.
func benchLines(b *testing.B) [][]byte {
	b.Helper()
	var lines [][]byte
	rng := rand.New(rand.NewPCG(4, 90))
	for h := range 100 {
		at := day1.Add(time.Duration(h) * time.Second)
		remote := fmt.Sprintf("10.0.0.%d:%d", h+1, 40000+rng.IntN(20000))
		for _, e := range []Entry{
			{TS: at, ID: fmt.Sprintf("dc7k4apksdudt434h%03d", h), Host: fmt.Sprintf("lab-%03d", h), Route: "heartbeat", Method: "POST",
				Status: 204, Commit: strings.Repeat("1234567890", 4), Stamped: true, DurMS: 0.4 + rng.Float64(), Remote: remote},
			{TS: at.Add(2 * time.Second), ID: fmt.Sprintf("dc7k4apksdudt434g%03d", h), Host: fmt.Sprintf("lab-%03d", h), Route: "episodes",
				Method: "PUT", Status: 201, Bytes: 5<<20 + rng.Int64N(1<<20), SHA256: fmt.Sprintf("%064x", rng.Uint64()),
				Commit: strings.Repeat("1234567890", 4), Stamped: true, DurMS: 300 + 100*rng.Float64(), Remote: remote},
		} {
			l, err := json.Marshal(e)
			require.NoError(b, err)
			lines = append(lines, l)
		}
	}
	return lines
}

// BenchmarkDecode sets the fast path beside encoding/json on the same lines.
func BenchmarkDecode(b *testing.B) {
	lines := benchLines(b)
	for _, bc := range []struct {
		name   string
		decode func([]byte) (Entry, bool)
	}{
		{"encoding-json", plainDecode},
		{"flat", decodeLine},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				if _, ok := bc.decode(lines[n%len(lines)]); !ok {
					b.Fatal("not an entry")
				}
				n++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/line")
		})
	}
}
