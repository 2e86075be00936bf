package testregistry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	ggcr "github.com/google/go-containerregistry/pkg/registry"
)

// Implementation names the registry code behind a Registry.
type Implementation int

const (
	// Distribution is the CNCF distribution registry v3 (the default): no
	// referrers API, so clients write the sha256-<hex> fallback tag.
	Distribution Implementation = iota
	// GoContainerRegistry is github.com/google/go-containerregistry's
	// pkg/registry, in memory, with its referrers API turned on
	// (WithReferrersSupport(true)) and the gaps of v0.22 worked around as
	// newGGCRHandler describes. It has no auth and no filesystem storage:
	// New refuses it with WithHtpasswd, WithTokenAuth or WithFilesystem.
	GoContainerRegistry
	// GoContainerRegistryNoReferrers is GoContainerRegistry with its
	// referrers API off (WithReferrersSupport(false), its default): the
	// referrers endpoint answers 404, so clients use the sha256-<hex>
	// fallback tag, as on GHCR and Docker Hub.
	GoContainerRegistryNoReferrers
)

// isGGCR reports whether i is go-containerregistry, either way.
func (i Implementation) isGGCR() bool {
	return i == GoContainerRegistry || i == GoContainerRegistryNoReferrers
}

// String names the implementation as test names want it.
func (i Implementation) String() string {
	switch i {
	case GoContainerRegistry:
		return "go-containerregistry"
	case GoContainerRegistryNoReferrers:
		return "go-containerregistry-no-referrers"
	}
	return "distribution"
}

// WithImplementation chooses the registry code; everything else (Host,
// TLS, counting, middleware, Stop/Restart) stays the same, so a test can
// run against both by changing this one option.
func WithImplementation(i Implementation) Option { return func(o *options) { o.impl = i } }

// Implementation reports which registry code serves r.
func (r *Registry) Implementation() Implementation { return r.opts.impl }

func (r *Registry) checkImplementation(t testing.TB) {
	t.Helper()
	if !r.opts.impl.isGGCR() {
		return
	}
	switch {
	case r.opts.user != "":
		t.Fatal("testregistry: go-containerregistry has no auth; WithHtpasswd needs Distribution")
	case r.opts.token != nil:
		t.Fatal("testregistry: go-containerregistry has no auth; WithTokenAuth needs Distribution")
	case r.opts.dir != "":
		t.Fatal("testregistry: go-containerregistry stores in memory only; WithFilesystem needs Distribution")
	}
}

// newGGCRHandler serves go-containerregistry's registry (v0.22) with four
// gaps worked around in front of it, each as narrowly as possible:
//
//   - Its referrers answer takes each descriptor's artifactType from the
//     config media type, where the OCI distribution spec (v1.1, "Listing
//     Referrers") says the manifest's artifactType comes first; and it
//     ignores the ?artifactType= filter. fixReferrers reads each referrer
//     back from the registry, sets artifactType as the spec says, applies
//     the filter and answers OCI-Filters-Applied.
//   - It never sends OCI-Subject after a manifest PUT carrying subject,
//     so clients (regclient) conclude the registry ignores subject and
//     also write the fallback tag. addOCISubject parses the pushed
//     manifest and adds the header to a 201.
//   - It has no upload-status GET (GET /v2/<name>/blobs/uploads/<id> is
//     read as a blob GET of digest "<id>" and answers 400), which clients
//     use to resume a chunked upload. uploadStatus remembers the Range of
//     every upload from the registry's own 202 answers and answers the GET
//     with 204, Location and Range.
//   - It holds one global lock while copying an upload body. Over HTTP/2 a
//     connection's streams share one flow-control window: a handler
//     blocked on the lock stops reading its stream, the window fills, and
//     the upload holding the lock never gets the rest of its body. So every
//     testregistry server speaks HTTP/1.1 only (tlsListener, and an empty
//     TLSNextProto), where each upload has its own connection and the lock
//     only serializes.
//
// Its tag list also mishandles ?last= (a last after every tag returns all
// tags again) and never sends Link; fixTags asks for all tags and applies
// n and last itself, with a Link header, so WithTagPageSize works too.
func newGGCRHandler(pageN int, referrers bool) http.Handler {
	logger := log.New(io.Discard, "", 0)
	if os.Getenv(DebugEnv) == "1" {
		logger = log.New(os.Stderr, "go-containerregistry: ", log.LstdFlags)
	}
	inner := ggcr.New(ggcr.WithReferrersSupport(referrers), ggcr.Logger(logger))
	return &ggcrFixes{inner: inner, pageN: pageN, referrers: referrers, uploads: map[string]int64{}}
}

type ggcrFixes struct {
	inner http.Handler
	pageN int // tags per page when a client sends no n; 0 means all
	// referrers: the referrers API is on, so OCI-Subject is sent (without
	// it, clients must write the fallback tag).
	referrers bool
	mu        sync.Mutex
	uploads   map[string]int64 // upload id → bytes received
}

var (
	referrersPath = regexp.MustCompile(`^/v2/(.+)/referrers/([^/]+)$`)
	uploadIDPath  = regexp.MustCompile(`^/v2/(.+)/blobs/uploads/([^/]+)$`)
	tagsPath      = regexp.MustCompile(`^/v2/(.+)/tags/list$`)
)

func (g *ggcrFixes) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	p := req.URL.Path
	switch {
	case req.Method == http.MethodGet && referrersPath.MatchString(p):
		g.fixReferrers(w, req)
	case req.Method == http.MethodGet && tagsPath.MatchString(p):
		g.fixTags(w, req)
	case req.Method == http.MethodPut && manifestPath.MatchString(p) && g.referrers:
		g.addOCISubject(w, req)
	case uploadIDPath.MatchString(p) || uploadStartPath.MatchString(p):
		g.uploadStatus(w, req)
	default:
		g.inner.ServeHTTP(w, req)
	}
}

// get runs a GET against the registry itself and returns the recording.
func (g *ggcrFixes) get(req *http.Request, path string, accept string) *httptest.ResponseRecorder {
	sub := req.Clone(req.Context())
	sub.Method = http.MethodGet
	sub.URL = &url.URL{Path: path}
	sub.RequestURI = path
	sub.Body = http.NoBody
	sub.ContentLength = 0
	sub.Header = http.Header{"Accept": {accept}}
	rec := httptest.NewRecorder()
	g.inner.ServeHTTP(rec, sub)
	return rec
}

func copyRecorded(w http.ResponseWriter, rec *httptest.ResponseRecorder, body []byte) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(rec.Code)
	_, _ = w.Write(body)
}

func (g *ggcrFixes) fixReferrers(w http.ResponseWriter, req *http.Request) {
	m := referrersPath.FindStringSubmatch(req.URL.Path)
	rec := g.get(req, req.URL.Path, "application/vnd.oci.image.index.v1+json")
	if rec.Code != http.StatusOK {
		copyRecorded(w, rec, rec.Body.Bytes())
		return
	}
	var idx map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &idx); err != nil {
		http.Error(w, "testregistry: referrers answer: "+err.Error(), http.StatusInternalServerError)
		return
	}
	want := req.URL.Query().Get("artifactType")
	descs, _ := idx["manifests"].([]any)
	kept := []any{}
	for _, d := range descs {
		desc, _ := d.(map[string]any)
		dg, _ := desc["digest"].(string)
		mrec := g.get(req, "/v2/"+m[1]+"/manifests/"+dg, "application/vnd.oci.image.manifest.v1+json")
		var mf struct {
			ArtifactType string `json:"artifactType"`
			Config       struct {
				MediaType string `json:"mediaType"`
			} `json:"config"`
		}
		_ = json.Unmarshal(mrec.Body.Bytes(), &mf)
		at := mf.ArtifactType
		if at == "" {
			at = mf.Config.MediaType
		}
		desc["artifactType"] = at
		if want == "" || at == want {
			kept = append(kept, desc)
		}
	}
	idx["manifests"] = kept
	body, err := json.Marshal(idx)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if want != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	copyRecorded(w, rec, body)
}

func (g *ggcrFixes) fixTags(w http.ResponseWriter, req *http.Request) {
	q := req.URL.Query()
	rec := g.get(req, req.URL.Path, "application/json")
	if rec.Code != http.StatusOK {
		copyRecorded(w, rec, rec.Body.Bytes())
		return
	}
	var tl struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &tl); err != nil {
		http.Error(w, "testregistry: tag list answer: "+err.Error(), http.StatusInternalServerError)
		return
	}
	sort.Strings(tl.Tags)
	if last := q.Get("last"); last != "" {
		i := sort.SearchStrings(tl.Tags, last)
		for i < len(tl.Tags) && tl.Tags[i] <= last {
			i++
		}
		tl.Tags = tl.Tags[i:]
	}
	n := g.pageN
	if s := q.Get("n"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			writeRegError(w, http.StatusBadRequest, "PAGINATION_NUMBER_INVALID", "invalid n "+strconv.Quote(s))
			return
		}
		if g.pageN == 0 || v < g.pageN {
			n = v
		}
	}
	if n > 0 && len(tl.Tags) > n {
		tl.Tags = tl.Tags[:n]
		next := url.Values{"n": {strconv.Itoa(n)}, "last": {tl.Tags[n-1]}}
		w.Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, req.URL.Path, next.Encode()))
	}
	if tl.Tags == nil {
		tl.Tags = []string{}
	}
	body, _ := json.Marshal(tl)
	rec.Header().Set("Content-Type", "application/json")
	copyRecorded(w, rec, body)
}

// maxManifest is the largest manifest PUT body addOCISubject reads;
// OpenTofu refuses manifests over 4 MiB, and so do registries.
const maxManifest = 4 << 20

func (g *ggcrFixes) addOCISubject(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, maxManifest+1))
	if err != nil {
		writeRegError(w, http.StatusBadRequest, "MANIFEST_INVALID", "reading manifest: "+err.Error())
		return
	}
	if len(body) > maxManifest {
		writeRegError(w, http.StatusRequestEntityTooLarge, "SIZE_INVALID", "manifest over 4 MiB")
		return
	}
	var mf struct {
		Subject *struct {
			Digest string `json:"digest"`
		} `json:"subject"`
	}
	_ = json.Unmarshal(body, &mf)
	sub := req.Clone(req.Context())
	sub.Body = io.NopCloser(bytes.NewReader(body))
	sub.ContentLength = int64(len(body))
	if mf.Subject == nil || mf.Subject.Digest == "" {
		g.inner.ServeHTTP(w, sub)
		return
	}
	g.inner.ServeHTTP(&beforeHeader{ResponseWriter: w, fn: func(status int, h http.Header) {
		if status == http.StatusCreated {
			h.Set("OCI-Subject", mf.Subject.Digest)
		}
	}}, sub)
}

// uploadStatus answers the upload-status GET go-containerregistry lacks,
// from the Range headers of its own answers to POST and PATCH.
func (g *ggcrFixes) uploadStatus(w http.ResponseWriter, req *http.Request) {
	if req.Method == http.MethodGet {
		m := uploadIDPath.FindStringSubmatch(req.URL.Path)
		if m == nil {
			g.inner.ServeHTTP(w, req)
			return
		}
		g.mu.Lock()
		n, ok := g.uploads[m[2]]
		g.mu.Unlock()
		if !ok {
			writeRegError(w, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry")
			return
		}
		w.Header().Set("Location", req.URL.Path)
		w.Header().Set("Docker-Upload-UUID", m[2])
		w.Header().Set("Range", fmt.Sprintf("0-%d", max(n-1, 0)))
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	id := ""
	if m := uploadIDPath.FindStringSubmatch(req.URL.Path); m != nil {
		id = m[2]
	}
	g.inner.ServeHTTP(&beforeHeader{ResponseWriter: w, fn: func(status int, h http.Header) {
		g.mu.Lock()
		defer g.mu.Unlock()
		switch {
		case req.Method == http.MethodPut && id != "":
			delete(g.uploads, id)
		case status == http.StatusAccepted:
			loc := h.Get("Location")
			uid := loc[strings.LastIndex(loc, "/")+1:]
			if req.Method == http.MethodPost {
				g.uploads[uid] = 0
				// Its "Range: 0-0" claims one byte received already.
				h.Del("Range")
				h.Set("Docker-Upload-UUID", uid)
				return
			}
			var end int64
			if _, err := fmt.Sscanf(h.Get("Range"), "0-%d", &end); err == nil {
				g.uploads[uid] = end + 1
			}
		}
	}}, req)
}

// beforeHeader calls fn with the status and headers just before they are
// sent, so a fix can add or drop a header.
type beforeHeader struct {
	http.ResponseWriter
	fn   func(status int, h http.Header)
	done bool
}

func (b *beforeHeader) WriteHeader(status int) {
	if !b.done {
		b.done = true
		b.fn(status, b.Header())
	}
	b.ResponseWriter.WriteHeader(status)
}

func (b *beforeHeader) Write(p []byte) (int, error) {
	if !b.done {
		b.WriteHeader(http.StatusOK)
	}
	return b.ResponseWriter.Write(p)
}

// writeRegError answers in the OCI distribution spec's error format.
func writeRegError(w http.ResponseWriter, status int, code, message string) {
	body, _ := json.Marshal(map[string]any{"errors": []map[string]string{{"code": code, "message": message}}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
