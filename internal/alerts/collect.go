package alerts

// Line is one alert with the bytes it was read from (printed as they are by --json).
type Line struct {
	Raw   []byte
	Alert Alert
}

// Collect reads every line r has now and returns the last n that parse and match f
// (every match when n < 0), oldest first. Memory stays at n lines however big the file.
func Collect(r *Reader, n int, f Filter) ([]Line, error) {
	var ring []Line
	next := 0
	err := r.Lines(func(raw []byte) error {
		a, ok := Parse(raw)
		if !ok || !f.Match(a) || n == 0 {
			return nil
		}
		l := Line{Raw: append([]byte(nil), raw...), Alert: a}
		if n < 0 || len(ring) < n {
			ring = append(ring, l)
			return nil
		}
		ring[next] = l
		next = (next + 1) % n
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]Line, 0, len(ring))
	out = append(out, ring[next:]...)
	return append(out, ring[:next]...), nil
}
