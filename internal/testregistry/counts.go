package testregistry

import (
	"net/http"
	"regexp"
	"sync"
)

// Counts is a snapshot of the requests a Registry received, by kind. Every
// request is counted once on arrival, before middleware and auth, so an
// unauthenticated first try and a request a middleware fails both count.
type Counts struct {
	// BlobHead and BlobGet are HEAD and GET of /v2/<name>/blobs/<digest>.
	BlobHead, BlobGet int
	// BlobUploadStart is POST /v2/<name>/blobs/uploads/ (including
	// monolithic POSTs with ?digest= and cross-repository mounts).
	BlobUploadStart int
	// BlobUploadPut and BlobUploadPatch are PUT and PATCH of
	// /v2/<name>/blobs/uploads/<id>.
	BlobUploadPut, BlobUploadPatch int
	// ManifestHead, ManifestGet and ManifestPut are those methods on
	// /v2/<name>/manifests/<reference>.
	ManifestHead, ManifestGet, ManifestPut int
	// TagList is GET /v2/<name>/tags/list, one per page.
	TagList int
	// Other is everything else: the /v2/ ping, deletes, upload status,
	// catalog, referrers, unknown paths.
	Other int
	// Total is the sum of all of the above.
	Total int
}

// Pushes is the number of requests that write: upload starts, PATCHes, PUTs
// and manifest PUTs. A no-op sync must leave it at zero.
func (c Counts) Pushes() int {
	return c.BlobUploadStart + c.BlobUploadPatch + c.BlobUploadPut + c.ManifestPut
}

type requestKind int

const (
	kindOther requestKind = iota
	kindBlobHead
	kindBlobGet
	kindBlobUploadStart
	kindBlobUploadPut
	kindBlobUploadPatch
	kindManifestHead
	kindManifestGet
	kindManifestPut
	kindTagList
)

// Repository names may hold slashes; digests, references and upload ids
// never do, so the last path element decides.
var (
	uploadStartPath = regexp.MustCompile(`^/v2/.+/blobs/uploads/$`)
	uploadPath      = regexp.MustCompile(`^/v2/.+/blobs/uploads/[^/]+$`)
	blobPath        = regexp.MustCompile(`^/v2/.+/blobs/[^/]+$`)
	manifestPath    = regexp.MustCompile(`^/v2/.+/manifests/[^/]+$`)
	tagListPath     = regexp.MustCompile(`^/v2/.+/tags/list$`)
)

func classify(method, path string) requestKind {
	switch {
	case uploadStartPath.MatchString(path):
		if method == http.MethodPost {
			return kindBlobUploadStart
		}
	case uploadPath.MatchString(path):
		switch method {
		case http.MethodPut:
			return kindBlobUploadPut
		case http.MethodPatch:
			return kindBlobUploadPatch
		}
	case blobPath.MatchString(path):
		switch method {
		case http.MethodHead:
			return kindBlobHead
		case http.MethodGet:
			return kindBlobGet
		}
	case manifestPath.MatchString(path):
		switch method {
		case http.MethodHead:
			return kindManifestHead
		case http.MethodGet:
			return kindManifestGet
		case http.MethodPut:
			return kindManifestPut
		}
	case tagListPath.MatchString(path):
		if method == http.MethodGet {
			return kindTagList
		}
	}
	return kindOther
}

type counter struct {
	mu sync.Mutex
	c  Counts
}

func (c *counter) add(k requestKind) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.c.Total++
	switch k {
	case kindBlobHead:
		c.c.BlobHead++
	case kindBlobGet:
		c.c.BlobGet++
	case kindBlobUploadStart:
		c.c.BlobUploadStart++
	case kindBlobUploadPut:
		c.c.BlobUploadPut++
	case kindBlobUploadPatch:
		c.c.BlobUploadPatch++
	case kindManifestHead:
		c.c.ManifestHead++
	case kindManifestGet:
		c.c.ManifestGet++
	case kindManifestPut:
		c.c.ManifestPut++
	case kindTagList:
		c.c.TagList++
	default:
		c.c.Other++
	}
}

// Counts returns a snapshot of the requests received since New or the last
// ResetCounts.
func (r *Registry) Counts() Counts {
	r.counts.mu.Lock()
	defer r.counts.mu.Unlock()
	return r.counts.c
}

// ResetCounts sets every count to zero.
func (r *Registry) ResetCounts() {
	r.counts.mu.Lock()
	defer r.counts.mu.Unlock()
	r.counts.c = Counts{}
}
