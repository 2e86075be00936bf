package testregistry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"sync"
)

// Behaviours of registries we cannot run in a test, as middleware for
// WithMiddleware in front of either implementation: each answers exactly as
// its source documents and passes everything else to the real registry.

// repoOf extracts the repository name of a /v2/<name>/... API path; ""
// for /v2/ and the catalog.
var repoOfPath = regexp.MustCompile(`^/v2/(.+)/(?:manifests|blobs|tags|referrers)/`)

func repoOf(path string) string {
	if m := repoOfPath.FindStringSubmatch(path); m != nil {
		return m[1]
	}
	return ""
}

// readManifest reads a manifest PUT body (bounded like registries bound it)
// and gives the request a fresh body with the same bytes.
func readManifest(w http.ResponseWriter, req *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(io.LimitReader(req.Body, maxManifest+1))
	if err != nil || len(body) > maxManifest {
		writeRegError(w, http.StatusBadRequest, "MANIFEST_INVALID", "manifest unreadable or over 4 MiB")
		return nil, false
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	return body, true
}

// manifestFields are the parts of an image manifest or index the
// behaviours below look at.
type manifestFields struct {
	MediaType    string `json:"mediaType"`
	ArtifactType string `json:"artifactType"`
	Config       *struct {
		MediaType string `json:"mediaType"`
	} `json:"config"`
	Layers []struct {
		MediaType string `json:"mediaType"`
	} `json:"layers"`
	Manifests []struct {
		MediaType    string `json:"mediaType"`
		ArtifactType string `json:"artifactType"`
	} `json:"manifests"`
	Subject *struct {
		Digest string `json:"digest"`
	} `json:"subject"`
}

// ECRSubjectRefusedMessage is the error message RefuseSubject answers with.
const ECRSubjectRefusedMessage = "manifests with a subject field are not supported"

// RefuseSubject answers 405 Method Not Allowed to every manifest PUT whose
// manifest carries `subject`, as Amazon ECR does for OCI 1.1 referrers with
// an artifactType (aws/containers-roadmap#2783, open since March 2026; the
// message here is ours, ECR's differs). Pushes without subject, and every
// read, pass through.
func RefuseSubject() func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.Method != http.MethodPut || !manifestPath.MatchString(req.URL.Path) {
				next.ServeHTTP(w, req)
				return
			}
			body, ok := readManifest(w, req)
			if !ok {
				return
			}
			var m manifestFields
			if json.Unmarshal(body, &m) == nil && m.Subject != nil {
				writeRegError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", ECRSubjectRefusedMessage)
				return
			}
			next.ServeHTTP(w, req)
		})
	}
}

// MediaTypeAllowlist answers 400 MANIFEST_INVALID to a manifest PUT naming
// any media type or artifact type (the manifest's artifactType, its config
// and layer media types, an index's entries' artifactType) outside
// Allowed, with Message as the registry's own words. The OCI manifest,
// index and empty-config types are always allowed: these registries
// refuse artifacts, not images.
//
// Sources: Quay accepts custom artifacts only with FEATURE_GENERAL_OCI_SUPPORT
// and lists them in ALLOWED_OCI_ARTIFACT_TYPES, config media type → layer
// media types (quay/quay#803, oras-project/oras#738, Quay's "Configuring
// OCI and Helm" docs); gitlab.com's registry accepts listed media types
// only (gitlab-org/container-registry#973; OpenTofu's types were added by
// gitlab-org/gitlab#562714).
type MediaTypeAllowlist struct {
	// Allowed lists the media and artifact types accepted besides the OCI
	// image types; empty refuses every artifact type.
	Allowed []string
	// Message is the error message; "" means "manifest invalid: media type
	// %q is not allowed" with the first refused type.
	Message string

	mu      sync.Mutex
	refused []string
}

var ociImageTypes = []string{
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.oci.empty.v1+json",
	"application/vnd.oci.image.config.v1+json",
	"application/vnd.oci.image.layer.v1.tar",
	"application/vnd.oci.image.layer.v1.tar+gzip",
}

// Refused lists the types refused so far, in order.
func (a *MediaTypeAllowlist) Refused() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.refused)
}

func (a *MediaTypeAllowlist) firstRefused(m manifestFields) string {
	types := []string{m.MediaType, m.ArtifactType}
	if m.Config != nil {
		types = append(types, m.Config.MediaType)
	}
	for _, l := range m.Layers {
		types = append(types, l.MediaType)
	}
	for _, e := range m.Manifests {
		types = append(types, e.MediaType, e.ArtifactType)
	}
	for _, t := range types {
		if t != "" && !slices.Contains(ociImageTypes, t) && !slices.Contains(a.Allowed, t) {
			return t
		}
	}
	return ""
}

// Middleware returns the middleware for WithMiddleware.
func (a *MediaTypeAllowlist) Middleware() func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.Method != http.MethodPut || !manifestPath.MatchString(req.URL.Path) {
				next.ServeHTTP(w, req)
				return
			}
			body, ok := readManifest(w, req)
			if !ok {
				return
			}
			var m manifestFields
			if err := json.Unmarshal(body, &m); err == nil {
				if t := a.firstRefused(m); t != "" {
					a.mu.Lock()
					a.refused = append(a.refused, t)
					a.mu.Unlock()
					msg := a.Message
					if msg == "" {
						msg = fmt.Sprintf("manifest invalid: media type %q is not allowed", t)
					}
					writeRegError(w, http.StatusBadRequest, "MANIFEST_INVALID", msg)
					return
				}
			}
			next.ServeHTTP(w, req)
		})
	}
}

// Repositories emulates a registry where repositories must be created
// before the first push: every request naming a repository not Created
// answers 404 NAME_UNKNOWN, as Amazon ECR does without create-on-push
// (its RepositoryNotFoundException, whose message the one here is modelled
// on; AWS docs "Creating a private repository" and "Repository creation
// templates" for create-on-push). The /v2/ ping passes.
type Repositories struct {
	mu      sync.Mutex
	created map[string]bool
	refused int
}

// NewRepositories returns the emulation with these repositories created.
func NewRepositories(names ...string) *Repositories {
	r := &Repositories{created: map[string]bool{}}
	for _, n := range names {
		r.created[n] = true
	}
	return r
}

// Create makes a repository exist, like `aws ecr create-repository`.
func (r *Repositories) Create(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.created[name] = true
}

// Refused counts requests answered NAME_UNKNOWN.
func (r *Repositories) Refused() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refused
}

// Middleware returns the middleware for WithMiddleware.
func (r *Repositories) Middleware() func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			name := repoOf(req.URL.Path)
			r.mu.Lock()
			ok := name == "" || r.created[name]
			if !ok {
				r.refused++
			}
			r.mu.Unlock()
			if !ok {
				writeRegError(w, http.StatusNotFound, "NAME_UNKNOWN",
					fmt.Sprintf("The repository with name '%s' does not exist in the registry", name))
				return
			}
			next.ServeHTTP(w, req)
		})
	}
}

// nginx413Body is the page nginx serves with 413 (its built-in error page).
const nginx413Body = "<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n<body>\r\n<center><h1>413 Request Entity Too Large</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"

// BodyLimit answers 413 Request Entity Too Large, with nginx's HTML page,
// to any request whose body is over Max bytes, as nginx does with
// client_max_body_size in front of Harbor, GitLab or Nexus (nginx docs,
// ngx_http_core_module client_max_body_size: "If the size in a request
// exceeds the configured value, the 413 (Request Entity Too Large) error
// is returned"). A declared Content-Length over Max is refused before the
// registry sees the request; a body without one is refused once Max bytes
// have passed, and the registry's own answer is dropped. Like nginx's
// lingering_close, the rest of the body is read and dropped after the
// answer, so clients see the 413 and not a reset. Chunked uploads whose
// every PATCH stays under Max pass.
type BodyLimit struct {
	// Max is the largest body accepted, in bytes.
	Max int64

	mu      sync.Mutex
	refused int
}

// Refused counts requests answered 413.
func (b *BodyLimit) Refused() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.refused
}

func (b *BodyLimit) refuse(w http.ResponseWriter) {
	// Without full duplex, net/http reads at most 256 KiB of an unread
	// body before answering and then closes: linger could not drain.
	_ = http.NewResponseController(w).EnableFullDuplex()
	b.mu.Lock()
	b.refused++
	b.mu.Unlock()
	w.Header().Set("Content-Type", "text/html")
	w.Header().Set("Content-Length", strconv.Itoa(len(nginx413Body)))
	w.Header().Set("Connection", "close")
	w.WriteHeader(http.StatusRequestEntityTooLarge)
	_, _ = io.WriteString(w, nginx413Body)
}

// Middleware returns the middleware for WithMiddleware.
func (b *BodyLimit) Middleware() func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.ContentLength > b.Max {
				b.refuse(w)
				linger(w, req.Body)
				return
			}
			if req.ContentLength >= 0 {
				next.ServeHTTP(w, req)
				return
			}
			lr := &limitedBody{r: req.Body, left: b.Max}
			req.Body = lr
			hw := &holdWriter{ResponseWriter: w, over: func() bool { return lr.over }}
			next.ServeHTTP(hw, req)
			if lr.over && !hw.wrote {
				b.refuse(w)
				linger(w, lr.r)
			}
		})
	}
}

// lingerMax bounds what linger reads after a refusal.
const lingerMax = 256 << 20

// linger sends the answer, then reads and drops the rest of the body, as
// nginx's lingering_close does, so a client still sending sees the 413
// rather than a connection reset.
func linger(w http.ResponseWriter, body io.Reader) {
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(body, lingerMax))
}

// limitedBody fails the read that would pass the limit.
type limitedBody struct {
	r    io.ReadCloser
	left int64
	over bool
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, fmt.Errorf("request body over client_max_body_size")
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		l.over = true
		return 0, fmt.Errorf("request body over client_max_body_size")
	}
	return n, err
}

func (l *limitedBody) Close() error { return l.r.Close() }

// holdWriter drops the registry's answer once the body went over the
// limit, so the 413 is what the client sees.
type holdWriter struct {
	http.ResponseWriter
	over  func() bool
	wrote bool
}

func (h *holdWriter) WriteHeader(status int) {
	if h.over() {
		return
	}
	h.wrote = true
	h.ResponseWriter.WriteHeader(status)
}

func (h *holdWriter) Write(p []byte) (int, error) {
	if h.over() {
		return len(p), nil
	}
	h.wrote = true
	return h.ResponseWriter.Write(p)
}
