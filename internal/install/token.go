package install

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"unicode"
)

// maxToken bounds what is read: tokens are a few dozen characters, and a wrong file
// (a tarball, /dev/zero) must not be read whole.
const maxToken = 4096

// ReadToken reads one bearer token: surrounding whitespace is dropped, and anything
// that cannot be a single token is refused before it is stored.
func ReadToken(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxToken+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxToken {
		return nil, fmt.Errorf("over %d bytes: not a token (expected the one line `cis490 token new` printed)", maxToken)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, errors.New("empty: expected the token `cis490 token new --host NAME` printed on the receiver")
	}
	if i := bytes.IndexFunc(b, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }); i >= 0 {
		return nil, errors.New("more than one word or line: expected the single token `cis490 token new` printed")
	}
	return b, nil
}
