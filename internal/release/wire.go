package release

import "time"

// Listed is one row of GET /v1/releases and `cis490 release list`: a published
// release, whether the version gate allows its commit and whether it is the target.
type Listed struct {
	Manifest
	PublishedAt time.Time `json:"published_at"`
	Allowed     bool      `json:"allowed"`
	Target      bool      `json:"target"`
}

// Listing is rels (highest seq first) as rows, the target (Newest) marked.
func Listing(rels []Published, allowed func(commit string) bool, pos map[string]int) []Listed {
	target, found := Newest(rels, allowed, pos)
	rows := make([]Listed, 0, len(rels))
	for _, r := range rels {
		rows = append(rows, Listed{Manifest: r.Manifest, PublishedAt: r.PublishedAt, Allowed: allowed(r.Commit),
			Target: found && r.Commit == target.Commit})
	}
	return rows
}

// TargetPath is the receiver's path of the release to run; ReleasePath that of one
// release (`cis490 update --to`), FileURLPath that of one of its files.
const TargetPath = "/v1/releases/target"

// ReleasePath is GET /v1/releases/{commit}: the release of commit, as Published.
func ReleasePath(commit string) string { return "/v1/releases/" + commit }

// FileURLPath is GET /v1/releases/{commit}/{file}.
func FileURLPath(commit, file string) string { return "/v1/releases/" + commit + "/" + file }
