package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"path"
	"strconv"
	"strings"
)

//go:embed static/page.css static/refresh.js
var staticFS embed.FS

// asset is one embedded file. Pages link it by a name carrying its content's hash
// (page.1a2b3c4d5e6f.css), which may be cached for good: a new build with other
// content links another name. The plain name is served too, revalidated each time.
type asset struct {
	name, hashed, contentType string
	body                      []byte
	etag                      string
}

func loadAsset(name, contentType string) asset {
	body, err := staticFS.ReadFile("static/" + name)
	if err != nil {
		panic("web: embedded " + name + " is missing: " + err.Error()) // a build error, not a runtime one
	}
	sum := sha256.Sum256(body)
	h := hex.EncodeToString(sum[:6])
	ext := path.Ext(name)
	return asset{
		name: name, hashed: strings.TrimSuffix(name, ext) + "." + h + ext, contentType: contentType,
		body: body, etag: `"` + h + `"`,
	}
}

// url is where pages link the asset.
func (a asset) url() string { return "/static/" + a.hashed }

func (p *Pages) static(w http.ResponseWriter, r *http.Request) {
	file := r.PathValue("file")
	for _, a := range p.assets {
		if file != a.name && file != a.hashed {
			continue
		}
		h := w.Header()
		h.Set("Content-Type", a.contentType)
		h.Set("ETag", a.etag)
		if file == a.hashed {
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			h.Set("Cache-Control", "no-cache")
		}
		if r.Header.Get("If-None-Match") == a.etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Length", strconv.Itoa(len(a.body)))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write(a.body)
		}
		return
	}
	http.Error(w, "no such file: the page's style sheet is /static/"+p.assets[0].name, http.StatusNotFound)
}
