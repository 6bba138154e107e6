package store

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/cis490/cis490/internal/protocol"
)

// Episodes is where the receiver keeps episodes and their sidecars: the data folder
// (*Store, backend fs) or a bucket (objstore.Store, backend s3). Both keep the same
// promises (SPEC §3.3, §3.4): the body streamed and verified against its SHA-256,
// exactly one copy and one Created however many identical uploads race, nothing
// partial ever visible.
type Episodes interface {
	// Stored answers a retry without its body: ok is false when host's sha is not
	// stored. A missing sidecar is written from retry before answering.
	Stored(ctx context.Context, host, sha string, retry EpisodeMeta) (res PutResult, ok bool, err error)
	// Has is Stored without the sidecar: false when it cannot tell.
	Has(ctx context.Context, host, sha string) bool
	// PutEpisode streams body in, verifying it against sha; see (*Store).PutEpisode.
	PutEpisode(ctx context.Context, host, sha string, body io.Reader, maxBytes int64, meta EpisodeMeta) (PutResult, error)
	// Stat is what is recorded of host's sha (its sidecar, with the stored size):
	// ok is false when it is not stored.
	Stat(ctx context.Context, host, sha string) (meta EpisodeMeta, ok bool, err error)
}

// ErrUnavailable is an episode store that cannot be reached or fails (an object store
// down or answering 5xx): the upload is answered 503 with Retry-After, and the host
// keeps its file and retries.
var ErrUnavailable = errors.New("the episode store is unavailable")

var _ Episodes = (*Store)(nil)

// Stat reads host's sha's sidecar and the tarball's size. A sidecar that a crash left
// missing is reported as Repaired with the file's size and time, as Open's placeholder
// would say.
func (s *Store) Stat(_ context.Context, host, sha string) (EpisodeMeta, bool, error) {
	if !validHost(host) || !protocol.ValidSHA256(sha) {
		return EpisodeMeta{}, false, ErrBadName
	}
	path := filepath.Join(s.episodes, host, sha)
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return EpisodeMeta{}, false, nil
	}
	if err != nil {
		return EpisodeMeta{}, false, err
	}
	meta, err := readMeta(path + ".json")
	if errors.Is(err, fs.ErrNotExist) {
		return EpisodeMeta{Size: st.Size(), ReceivedAt: st.ModTime().UTC(), Repaired: true}, true, nil
	}
	if err != nil {
		return EpisodeMeta{}, false, err
	}
	meta.Size = st.Size()
	return meta, true, nil
}
