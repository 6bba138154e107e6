package index

import (
	"encoding/json"
	"strconv"
)

// decodeLine decodes one line (its newline removed) as json.Unmarshal into an Entry
// would; ok is false for anything that is not an entry (not JSON, a field of the wrong
// type, no ts).
//
// A fleet-health check decodes every line of the window, and encoding/json was most of
// its cost (validating the whole line, then walking it again through reflection). The
// writer's lines are flat objects of plain ASCII strings, numbers and booleans, so
// decodeFlat decodes those directly and declines everything else (escapes, non-ASCII,
// nested values, null, a key only a case-insensitive match would find), which then
// goes to encoding/json: the result is the same either way. FuzzDecode holds the two
// to that.
func decodeLine(line []byte) (Entry, bool) {
	var e Entry
	if !decodeFlat(line, &e) {
		return decodeJSON(line)
	}
	return e, !e.TS.IsZero()
}

// decodeJSON is decodeLine by encoding/json alone (a function of its own, so that only
// the lines that need it pay for the Entry it moves to the heap).
func decodeJSON(line []byte) (Entry, bool) {
	var e Entry
	if json.Unmarshal(line, &e) != nil {
		return Entry{}, false
	}
	return e, !e.TS.IsZero()
}

// decodeFlat decodes b into e if b is one JSON object whose values are all plain
// strings, numbers or booleans that fit their fields, and reports whether it did.
// When it reports false, e may be half filled.
func decodeFlat(b []byte, e *Entry) bool {
	i := skipSpace(b, 0)
	if i == len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipSpace(b, i+1) == len(b)
	}
	for {
		key, j, ok := plainString(b, i)
		if !ok {
			return false
		}
		i = skipSpace(b, j)
		if i == len(b) || b[i] != ':' {
			return false
		}
		if i, ok = decodeField(b, skipSpace(b, i+1), key, e); !ok {
			return false
		}
		i = skipSpace(b, i)
		if i == len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return skipSpace(b, i+1) == len(b)
		default:
			return false
		}
	}
}

// decodeField decodes the value at b[i:] into e's field named key, returning the
// index after it.
func decodeField(b []byte, i int, key []byte, e *Entry) (int, bool) {
	var field *string
	switch string(key) {
	case "ts":
		v, end, ok := plainString(b, i)
		// With the quotes, as encoding/json hands a json.Unmarshaler its value.
		if !ok || e.TS.UnmarshalJSON(b[i:i+len(v)+2]) != nil {
			return 0, false
		}
		return end, true
	case "status":
		n, end, ok := plainInt(b, i, 9) // fits any int, 32-bit ones too
		e.Status = int(n)
		return end, ok
	case "bytes":
		n, end, ok := plainInt(b, i, 18)
		e.Bytes = n
		return end, ok
	case "dur_ms":
		end, ok := number(b, i)
		if !ok {
			return 0, false
		}
		f, err := strconv.ParseFloat(string(b[i:end]), 64)
		e.DurMS = f
		return end, err == nil
	case "stamped":
		return plainBool(b, i, &e.Stamped)
	case "unverified":
		return plainBool(b, i, &e.Unverified)
	case "id":
		field = &e.ID
	case "host":
		field = &e.Host
	case "route":
		field = &e.Route
	case "method":
		field = &e.Method
	case "sha256":
		field = &e.SHA256
	case "commit":
		field = &e.Commit
	case "remote":
		field = &e.Remote
	case "error":
		field = &e.Error
	default:
		return skipScalar(b, i, key)
	}
	v, end, ok := plainString(b, i)
	if ok {
		*field = string(v)
	}
	return end, ok
}

// skipScalar passes over the value of a key Entry does not have. A key with an upper
// case letter is declined: encoding/json matches keys regardless of case, so it may
// be one of Entry's after all.
func skipScalar(b []byte, i int, key []byte) (int, bool) {
	for _, c := range key {
		if 'A' <= c && c <= 'Z' {
			return 0, false
		}
	}
	if i == len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		_, end, ok := plainString(b, i)
		return end, ok
	case 't':
		return literal(b, i, "true")
	case 'f':
		return literal(b, i, "false")
	case 'n':
		return literal(b, i, "null")
	}
	return number(b, i)
}

// plainString returns the contents of the string at b[i], which must be printable
// ASCII without escapes, and the index after its closing quote.
func plainString(b []byte, i int) ([]byte, int, bool) {
	if i == len(b) || b[i] != '"' {
		return nil, 0, false
	}
	j := i + 1
	for j < len(b) && plainByte[b[j]] {
		j++
	}
	if j == len(b) || b[j] != '"' {
		return nil, 0, false
	}
	return b[i+1 : j], j + 1, true
}

// plainByte is true for the bytes a plain string holds as they are: printable ASCII
// but the quote and the backslash.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// plainInt parses an integer of at most digits digits at b[i], as a JSON number
// (no leading zero, no fraction or exponent).
func plainInt(b []byte, i, digits int) (int64, int, bool) {
	end, ok := number(b, i)
	if !ok {
		return 0, 0, false
	}
	neg := b[i] == '-'
	if neg {
		i++
	}
	if end-i > digits {
		return 0, 0, false
	}
	var n int64
	for _, c := range b[i:end] {
		if c < '0' || c > '9' {
			return 0, 0, false // a fraction or an exponent: not an int to encoding/json
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, end, true
}

func plainBool(b []byte, i int, v *bool) (int, bool) {
	if end, ok := literal(b, i, "true"); ok {
		*v = true
		return end, true
	}
	end, ok := literal(b, i, "false")
	*v = false
	return end, ok
}

func literal(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, false
	}
	return i + len(lit), true
}

// number returns the index after the JSON number at b[i].
func number(b []byte, i int) (int, bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i == len(b):
		return 0, false
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		i = digits(b, i)
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		j := digits(b, i+1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

func digits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

// skipSpace skips JSON's whitespace: space, tab, newline, carriage return.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}
