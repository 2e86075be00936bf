// Package testregistry runs the CNCF distribution registry
// (github.com/distribution/distribution/v3) in-process on 127.0.0.1 for
// tests and benchmarks: a real OCI registry with real storage, optional TLS
// from a test CA, optional htpasswd auth, request counting, fault-injection
// middleware and stop/restart.
//
// Distribution logs through logrus' standard logger; New silences it for the
// whole process unless TESTREGISTRY_DEBUG=1.
package testregistry

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/bcrypt"

	// Registered by init: the htpasswd access controller and both storage
	// drivers New can be asked for.
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	_ "github.com/distribution/distribution/v3/registry/auth/token"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry/testca"
)

// DebugEnv names the environment variable that, set to "1", keeps
// distribution's logrus output (on stderr, at debug level).
const DebugEnv = "TESTREGISTRY_DEBUG"

// Registry is a running distribution registry. Its fields are set by New and
// stay the same across Stop and Restart.
type Registry struct {
	// Host is "127.0.0.1:PORT", the registry part of a reference.
	Host string
	// URL is "http://Host" or, with WithTLS, "https://Host".
	URL string
	// CAFile is the PEM file of the CA that signed the server certificate;
	// empty without WithTLS.
	CAFile string
	// CACertPEM is the content of CAFile; nil without WithTLS.
	CACertPEM []byte

	t            testing.TB
	opts         options
	ca           *testca.CA
	tlsCfg       *tls.Config
	secret       string
	htpasswdPath string

	app     atomic.Pointer[handlers.App]
	ggcr    http.Handler // the go-containerregistry handler, with WithImplementation(GoContainerRegistry)
	handler http.Handler

	// Issuer is the token server of a registry made WithTokenAuth; nil
	// otherwise.
	Issuer *TokenIssuer
	counts counter

	mu      sync.Mutex
	server  *http.Server
	stopped bool
}

// Option changes how New sets up a Registry.
type Option func(*options)

type options struct {
	tls           bool
	user, pass    string
	dir           string
	middleware    []func(http.Handler) http.Handler
	tagPageSize   int
	deleteEnabled bool
	impl          Implementation
	token         *tokenAuth
}

// WithTLS serves HTTPS with a certificate for 127.0.0.1 and localhost signed
// by a CA created for the test (Registry.CAFile).
func WithTLS() Option { return func(o *options) { o.tls = true } }

// WithHtpasswd requires HTTP basic auth as user/pass, checked by
// distribution's htpasswd access controller. Distribution documents that
// htpasswd must be used under TLS but does not enforce it; combine it with
// WithTLS unless a test is about plain HTTP.
func WithHtpasswd(user, pass string) Option {
	return func(o *options) { o.user, o.pass = user, pass }
}

// WithFilesystem stores content under dir with the filesystem driver instead
// of in memory. A Restart then starts a fresh registry app on the same
// directory, like a process restart.
func WithFilesystem(dir string) Option { return func(o *options) { o.dir = dir } }

// WithMiddleware wraps the registry handler, e.g. to inject faults. Requests
// are counted before any middleware runs. Several middlewares apply in order:
// the first given is the outermost.
func WithMiddleware(mw func(http.Handler) http.Handler) Option {
	return func(o *options) { o.middleware = append(o.middleware, mw) }
}

// WithTagPageSize makes the tags/list endpoint paginate at n tags per page.
// Distribution returns every tag when a client sends no n, so a GET without
// n gets n=N added before the registry sees it, and larger n are clamped to
// N (configuration tags.maxtags). Each page but the last carries a Link
// header to the next.
func WithTagPageSize(n int) Option { return func(o *options) { o.tagPageSize = n } }

// WithDelete enables manifest and blob deletion (storage.delete.enabled),
// which distribution disables by default.
func WithDelete() Option { return func(o *options) { o.deleteEnabled = true } }

var silenceOnce sync.Once

// serverErrorLog keeps net/http's own complaints (TLS handshakes cut short by
// Stop, clients that hang up) out of test output unless debugging.
func serverErrorLog() *log.Logger {
	if os.Getenv(DebugEnv) == "1" {
		return log.New(os.Stderr, "testregistry: ", 0)
	}
	return log.New(io.Discard, "", 0)
}

func configureLogging() {
	silenceOnce.Do(func() {
		if os.Getenv(DebugEnv) == "1" {
			logrus.SetOutput(os.Stderr)
			logrus.SetLevel(logrus.DebugLevel)
			return
		}
		logrus.SetOutput(io.Discard)
		logrus.SetLevel(logrus.PanicLevel)
	})
}

// New starts a registry on 127.0.0.1 and stops it in t.Cleanup.
func New(t testing.TB, opts ...Option) *Registry {
	t.Helper()
	configureLogging()
	r := &Registry{t: t}
	for _, opt := range opts {
		opt(&r.opts)
	}
	r.secret = randomSecret(t)
	if r.opts.tls {
		r.ca = testca.New(t)
		r.CAFile = r.ca.File
		r.CACertPEM = r.ca.CertPEM
		r.tlsCfg = r.ca.ServerTLSConfig(t)
	}
	if r.opts.user != "" {
		r.htpasswdPath = writeHtpasswd(t, r.opts.user, r.opts.pass)
	}
	r.checkImplementation(t)
	if r.opts.token != nil {
		r.Issuer = newTokenIssuer(t, r.ca, r.opts.token)
	}
	if r.opts.impl.isGGCR() {
		r.ggcr = newGGCRHandler(r.opts.tagPageSize, r.opts.impl == GoContainerRegistry)
	} else {
		r.app.Store(r.newApp())
	}
	r.handler = r.buildHandler()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testregistry: listening on 127.0.0.1: %v", err)
	}
	r.Host = ln.Addr().String()
	r.URL = "http://" + r.Host
	if r.opts.tls {
		r.URL = "https://" + r.Host
	}
	r.serve(ln)
	t.Cleanup(r.close)
	return r
}

func randomSecret(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("testregistry: random http secret: %v", err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// writeHtpasswd writes a bcrypt htpasswd file at the lowest cost: the access
// controller checks the hash on every request.
func writeHtpasswd(t testing.TB, user, pass string) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatalf("testregistry: bcrypt for user %q: %v", user, err)
	}
	path := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(path, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatalf("testregistry: writing %s: %v", path, err)
	}
	return path
}

func (r *Registry) newApp() *handlers.App {
	cfg := &configuration.Configuration{}
	cfg.HTTP.Secret = r.secret
	cfg.Log.Level = "error"
	storage := configuration.Storage{
		"maintenance": configuration.Parameters{
			"uploadpurging": map[any]any{"enabled": false},
		},
		"redirect": configuration.Parameters{"disable": true},
		"delete":   configuration.Parameters{"enabled": r.opts.deleteEnabled},
	}
	if r.opts.dir != "" {
		storage["filesystem"] = configuration.Parameters{"rootdirectory": r.opts.dir}
	} else {
		storage["inmemory"] = configuration.Parameters{}
	}
	cfg.Storage = storage
	if r.htpasswdPath != "" {
		cfg.Auth = configuration.Auth{"htpasswd": configuration.Parameters{
			"realm": "testregistry",
			"path":  r.htpasswdPath,
		}}
	}
	if r.Issuer != nil {
		cfg.Auth = configuration.Auth{"token": r.Issuer.registryAuthParameters()}
	}
	if r.opts.tagPageSize > 0 {
		cfg.Tags.MaxTags = r.opts.tagPageSize
	}
	return handlers.NewApp(context.Background(), cfg)
}

// buildHandler composes counting, then the caller's middleware, then tag
// paging, then whichever app is current (Restart may swap it).
func (r *Registry) buildHandler() http.Handler {
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.app.Load().ServeHTTP(w, req)
	})
	if r.ggcr != nil {
		h = r.ggcr
	}
	if r.opts.tagPageSize > 0 {
		h = tagPager(r.opts.tagPageSize, h)
	}
	for i := len(r.opts.middleware) - 1; i >= 0; i-- {
		h = r.opts.middleware[i](h)
	}
	next := h
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.counts.add(classify(req.Method, req.URL.Path))
		next.ServeHTTP(w, req)
	})
}

func tagPager(n int, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodGet && classify(req.Method, req.URL.Path) == kindTagList {
			q := req.URL.Query()
			if q.Get("n") == "" {
				q.Set("n", strconv.Itoa(n))
				req = req.Clone(req.Context())
				req.URL.RawQuery = q.Encode()
				req.RequestURI = req.URL.RequestURI()
			}
		}
		next.ServeHTTP(w, req)
	})
}

func (r *Registry) serve(ln net.Listener) {
	if r.tlsCfg != nil {
		ln = tlsListener(ln, r.tlsCfg)
	}
	srv := &http.Server{
		Handler:           r.handler,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          serverErrorLog(),
		// HTTP/1.1 only, for every implementation: see ggcr.go for why
		// go-containerregistry's registry must never see HTTP/2. An empty
		// map keeps net/http from offering h2 even if tlsCfg ever did.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	r.mu.Lock()
	r.server = srv
	r.stopped = false
	r.mu.Unlock()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.t.Errorf("testregistry: serving %s: %v", r.Host, err)
		}
	}()
}

// Stop closes the listener and every open connection at once, as a registry
// that goes away mid-sync would; requests in flight fail on the client side.
// Content stays for Restart.
func (r *Registry) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return
	}
	r.stopped = true
	_ = r.server.Close()
}

// Restart serves again on the same Host after Stop (it stops first if
// needed). In-memory content survives because the same app keeps serving;
// with WithFilesystem a new app is built on the same directory. Call it from
// the test goroutine: it fails the test if the port cannot be bound again.
func (r *Registry) Restart() {
	r.t.Helper()
	r.Stop()
	if r.opts.dir != "" && r.ggcr == nil {
		old := r.app.Load()
		r.app.Store(r.newApp())
		_ = old.Shutdown()
	}
	var ln net.Listener
	var err error
	// The old socket may linger for a moment after Close.
	for range 50 {
		if ln, err = net.Listen("tcp", r.Host); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatalf("testregistry: listening again on %s: %v", r.Host, err)
	}
	r.serve(ln)
}

func (r *Registry) close() {
	r.Stop()
	if app := r.app.Load(); app != nil {
		_ = app.Shutdown()
	}
}

// DockerConfig writes a Docker config.json with the htpasswd credentials for
// Host (no auths without WithHtpasswd) in a t.TempDir() and returns its path,
// for regclient.WithDockerCredsFile or DOCKER_CONFIG.
func (r *Registry) DockerConfig(t testing.TB) string {
	t.Helper()
	return writeDockerConfig(t, r.Host, r.opts.user, r.opts.pass)
}

// writeDockerConfig writes a config.json with user/pass for host, or no
// auths when user is "".
func writeDockerConfig(t testing.TB, host, user, pass string) string {
	t.Helper()
	type auth struct {
		Auth string `json:"auth"`
	}
	cfg := struct {
		Auths map[string]auth `json:"auths"`
	}{Auths: map[string]auth{}}
	if user != "" {
		cfg.Auths[host] = auth{Auth: base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))}
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatalf("testregistry: docker config: %v", err)
	}
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatalf("testregistry: writing %s: %v", path, err)
	}
	return path
}

// Ref returns "Host/repo", the start of a reference to repo on this registry.
func (r *Registry) Ref(repo string) string {
	return fmt.Sprintf("%s/%s", r.Host, repo)
}

// tlsListener serves TLS offering HTTP/1.1 only (see ggcr.go for why).
func tlsListener(ln net.Listener, cfg *tls.Config) net.Listener {
	cfg = cfg.Clone()
	cfg.NextProtos = []string{"http/1.1"}
	return tls.NewListener(ln, cfg)
}
