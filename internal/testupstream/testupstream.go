// Package testupstream runs an OpenTofu registry on 127.0.0.1 for tests and
// benchmarks: service discovery, the provider registry protocol with
// synthetic (or real) provider zips whose SHA256SUMS are signed with a real
// OpenPGP key generated per server, the module registry protocol, and static
// archives. It can misbehave on purpose (tampered packages, injected HTTP
// failures) and counts and records what clients asked for.
//
// All state lives in memory except synthetic zips, which are generated from
// a seed each time they are served, so large WithPackageSize benchmarks do
// not hold packages in memory.
package testupstream

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry/testca"
)

// Server is a running registry. Its exported fields are set by New and never
// change.
type Server struct {
	// URL is the base URL, "https://127.0.0.1:PORT" ("http://" with
	// WithPlainHTTP), without a trailing slash. Absolute URLs the server
	// hands out start with it unless AdvertiseURL says otherwise.
	URL string
	// Host is "127.0.0.1:PORT".
	Host string
	// CAFile is the PEM file of the test CA that signed the server
	// certificate; empty with WithPlainHTTP.
	CAFile string
	// CACertPEM is the content of CAFile; nil with WithPlainHTTP.
	CACertPEM []byte
	// Key signs every SHA256SUMS this server serves.
	Key *openpgp.Entity
	// KeyID is Key's id as the registry reports it: 16 upper-case hex digits.
	KeyID string
	// ArmoredPublicKey is Key's public part, ASCII-armored, as the download
	// endpoint returns it.
	ArmoredPublicKey string

	t      testing.TB
	opts   options
	srv    *httptest.Server
	ca     *testca.CA
	mux    *http.ServeMux
	signAt time.Time // zero: sign at the current time

	// stranger signs nothing; TamperUnknownKey hands out its public key so
	// the real signature's issuer is not among the returned keys.
	stranger *keyInfo

	mu        sync.Mutex
	providers map[string]*provider // by lower-case "namespace/type"
	modules   map[string]*module   // by lower-case "namespace/name/system"
	archives  map[string][]byte    // by URL path
	// terraformGet holds ServeTerraformGet's answers, by URL path.
	terraformGet map[string]string
	// basicAuth holds RequireBasicAuth's user and password, by URL path.
	basicAuth map[string][2]string
	// bearer holds RequireToken's tokens, by URL path.
	bearer    map[string]string
	discovery map[string]string // nil: 404
	faults    []*fault
	counts    UpstreamCounts
	requests  []RecordedRequest

	// advertised is the base of the absolute URLs the server hands out;
	// URL unless AdvertiseURL changed it. Guarded by mu.
	advertised string

	// closing is closed before the server shuts down, releasing handlers
	// that Stall or Hang holds.
	closing chan struct{}
}

type keyInfo struct {
	id      string
	armored string
}

// Option changes how New sets up a Server.
type Option func(*options)

type options struct {
	plainHTTP   bool
	packageSize int64
	moduleStyle ModuleDownloadStyle
	token       string
	key         *openpgp.Entity
	expiredKey  bool
	noPlatforms bool
	noHTTP2     bool
}

// DefaultPackageSize is the size of the pseudo-random provider binary inside
// each synthetic zip unless WithPackageSize says otherwise.
const DefaultPackageSize = 4 << 10

// WithoutPlatformsInVersions leaves "platforms" out of every versions
// answer, as some private registries do; OpenTofu never reads the field and
// asks the download endpoint per platform instead.
func WithoutPlatformsInVersions() Option { return func(o *options) { o.noPlatforms = true } }

// WithoutHTTP2 offers only HTTP/1.1 over TLS. By default the server
// offers HTTP/2 and HTTP/1.1 by ALPN, as GitHub and registry.opentofu.org
// do; a client that asks for neither (or only HTTP/1.1) gets HTTP/1.1.
func WithoutHTTP2() Option { return func(o *options) { o.noHTTP2 = true } }

// WithPlainHTTP serves plain HTTP instead of HTTPS.
func WithPlainHTTP() Option { return func(o *options) { o.plainHTTP = true } }

// WithPackageSize sets the size in bytes of the provider binary inside
// synthetic zips added afterwards by AddProvider. The zip stores it
// uncompressed, so the zip is that size plus about 200 bytes.
func WithPackageSize(n int64) Option { return func(o *options) { o.packageSize = n } }

// WithModuleDownloadStyle sets how module download endpoints answer unless
// SetModuleDownloadStyle says otherwise for a module (default
// ModuleDownloadJSON, as registry.opentofu.org does).
func WithModuleDownloadStyle(style ModuleDownloadStyle) Option {
	return func(o *options) { o.moduleStyle = style }
}

// WithToken makes discovery and every /v1/ endpoint answer 401 unless the
// request carries "Authorization: Bearer token". Files and archives need no
// token, as on real registries.
func WithToken(token string) Option { return func(o *options) { o.token = token } }

// WithKey signs with key instead of a freshly generated one, e.g. to share a
// key between servers. It must hold a private signing key.
func WithKey(key *openpgp.Entity) Option { return func(o *options) { o.key = key } }

// WithExpiredKey signs with a generated key that was created two days ago
// and expired a day later; signatures are dated within its lifetime, as for
// an old release whose key has since expired. openpgp.CheckDetachedSignature
// then returns the signer together with errors.ErrKeyExpired.
func WithExpiredKey() Option { return func(o *options) { o.expiredKey = true } }

// New starts a registry on 127.0.0.1 and closes it in t.Cleanup.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{
		t:            t,
		opts:         options{packageSize: DefaultPackageSize},
		providers:    map[string]*provider{},
		modules:      map[string]*module{},
		archives:     map[string][]byte{},
		terraformGet: map[string]string{},
		basicAuth:    map[string][2]string{},
		bearer:       map[string]string{},
		discovery:    map[string]string{"providers.v1": "/v1/providers/", "modules.v1": "/v1/modules/"},
		closing:      make(chan struct{}),
	}
	for _, opt := range opts {
		opt(&s.opts)
	}
	s.setKey(t)
	stranger := newKey(t, nil)
	s.stranger = &keyInfo{id: keyID(stranger), armored: armoredPublicKey(t, stranger)}

	s.mux = http.NewServeMux()
	s.routes()
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
	// Clients that reject the certificate on purpose are not news.
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if s.opts.plainHTTP {
		s.srv.Start()
	} else {
		s.ca = testca.New(t)
		s.CAFile = s.ca.File
		s.CACertPEM = s.ca.CertPEM
		s.srv.TLS = s.ca.ServerTLSConfig(t)
		s.srv.TLS.NextProtos = []string{"h2", "http/1.1"}
		if s.opts.noHTTP2 {
			s.srv.TLS.NextProtos = []string{"http/1.1"}
		} else {
			s.srv.EnableHTTP2 = true
		}
		s.srv.StartTLS()
	}
	s.URL = s.srv.URL
	s.advertised = s.URL
	s.Host = strings.TrimPrefix(strings.TrimPrefix(s.URL, "https://"), "http://")
	t.Cleanup(s.srv.Close)
	// Cleanups run last-in first-out: held handlers return before Close
	// waits for them.
	t.Cleanup(func() { close(s.closing) })
	return s
}

func (s *Server) setKey(t testing.TB) {
	t.Helper()
	switch {
	case s.opts.key != nil:
		s.Key = s.opts.key
	case s.opts.expiredKey:
		created := time.Now().Add(-48 * time.Hour)
		s.Key = newKey(t, &packet.Config{
			Time:            func() time.Time { return created },
			KeyLifetimeSecs: 24 * 60 * 60,
		})
		s.signAt = created.Add(time.Hour)
	default:
		s.Key = newKey(t, nil)
	}
	s.KeyID = keyID(s.Key)
	s.ArmoredPublicKey = armoredPublicKey(t, s.Key)
}

// newKey generates an Ed25519 key: milliseconds, where RSA takes tens of
// them, and every OpenPGP implementation OpenTofu has used verifies it.
func newKey(t testing.TB, cfg *packet.Config) *openpgp.Entity {
	t.Helper()
	if cfg == nil {
		cfg = &packet.Config{}
	}
	cfg.Algorithm = packet.PubKeyAlgoEdDSA
	e, err := openpgp.NewEntity("testupstream", t.Name(), "testupstream@example.invalid", cfg)
	if err != nil {
		t.Fatalf("testupstream: generating OpenPGP key: %v", err)
	}
	return e
}

func keyID(e *openpgp.Entity) string {
	return fmt.Sprintf("%016X", e.PrimaryKey.KeyId)
}

func armoredPublicKey(t testing.TB, e *openpgp.Entity) string {
	t.Helper()
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err == nil {
		err = e.Serialize(w)
	}
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		t.Fatalf("testupstream: armoring public key %s: %v", keyID(e), err)
	}
	return buf.String()
}

// Services returns absolute service URLs for this server, as a CLI config
// host override would list them; they start with the advertised base URL
// (see AdvertiseURL).
func (s *Server) Services() map[string]string {
	base := s.AdvertisedURL()
	return map[string]string{
		"providers.v1": base + "/v1/providers/",
		"modules.v1":   base + "/v1/modules/",
	}
}

// AdvertiseURL makes the absolute URLs the server hands out from now on
// (shasums_signature_url in download answers, Services) start with base,
// e.g. "https://127.0.0.1:PORT" of a TCP proxy in front of the server, so
// a client that follows them stays behind the proxy. Relative URLs
// (download_url, shasums_url, discovery) need no change: the client
// resolves them against the address it asked. Module locations are what
// the caller registered. An empty base restores URL.
func (s *Server) AdvertiseURL(base string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advertised = strings.TrimSuffix(base, "/")
	if s.advertised == "" {
		s.advertised = s.URL
	}
}

// AdvertisedURL is the base of the absolute URLs the server hands out:
// URL, or what AdvertiseURL set.
func (s *Server) AdvertisedURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.advertised
}

// SetDiscovery replaces the /.well-known/terraform.json document; nil makes
// it answer 404 (a host that offers no services).
func (s *Server) SetDiscovery(services map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.discovery = services
}

// Client returns an HTTP client that trusts this server's test CA.
func (s *Server) Client() *http.Client {
	if s.ca == nil {
		return &http.Client{Transport: &http.Transport{}}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: s.ca.ClientTLSConfig()}}
}

// TLSConfig returns a client TLS config trusting this server's test CA, or
// nil with WithPlainHTTP.
func (s *Server) TLSConfig() *tls.Config {
	if s.ca == nil {
		return nil
	}
	return s.ca.ClientTLSConfig()
}

func (s *Server) routes() {
	s.mux.HandleFunc("GET /.well-known/terraform.json", s.handleDiscovery)
	s.mux.HandleFunc("GET /v1/providers/{namespace}/{type}/versions", s.handleProviderVersions)
	s.mux.HandleFunc("GET /v1/providers/{namespace}/{type}/{version}/download/{os}/{arch}", s.handleProviderDownload)
	s.mux.HandleFunc("GET /files/{namespace}/{type}/{version}/{file}", s.handleFile)
	s.mux.HandleFunc("GET /files/{namespace}/{type}/{version}/corrupt/{file}", s.handleFile)
	s.mux.HandleFunc("GET /v1/modules/{namespace}/{name}/{system}/versions", s.handleModuleVersions)
	s.mux.HandleFunc("GET /v1/modules/{namespace}/{name}/{system}/{version}/download", s.handleModuleDownload)
}

// needsToken reports whether a path is an API endpoint WithToken guards.
func needsToken(path string) bool {
	return path == "/.well-known/terraform.json" || strings.HasPrefix(path, "/v1/")
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, RecordedRequest{
		Method:        r.Method,
		Path:          r.URL.Path,
		RawQuery:      r.URL.RawQuery,
		Authorization: r.Header.Get("Authorization"),
	})
	_, isArchive := s.archives[r.URL.Path]
	kind := kindArchive
	if !isArchive {
		_, pattern := s.mux.Handler(r)
		kind = classify(pattern, r.URL.Path)
	}
	s.counts.add(kind)
	f := s.takeFault(r.URL.Path)
	s.mu.Unlock()

	if f != nil && f.misbehave != nil {
		s.misbehave(f.misbehave, w, r, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.serveHonest(w, r, isArchive) }))
		return
	}
	if f != nil {
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		writeError(w, f.status, "injected failure")
		return
	}
	s.serveHonest(w, r, isArchive)
}

// serveHonest answers as a well-behaved registry would.
func (s *Server) serveHonest(w http.ResponseWriter, r *http.Request, isArchive bool) {
	if s.opts.token != "" && needsToken(r.URL.Path) && r.Header.Get("Authorization") != "Bearer "+s.opts.token {
		writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
		return
	}
	if isArchive {
		s.handleArchive(w, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	doc := s.discovery
	s.mu.Unlock()
	if doc == nil {
		writeError(w, http.StatusNotFound, "no services")
		return
	}
	writeJSON(w, http.StatusOK, doc)
}

// writeError answers in the registry's error shape, {"errors":[...]}.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string][]string{"errors": {msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
