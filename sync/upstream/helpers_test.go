package upstream

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
)

// testToken is the registry token the test clients hold; no log line or
// error may ever contain it.
const testToken = "s3cr3t-registry-token"

// keyConfig makes fast Ed25519 keys.
func keyConfig() *packet.Config { return &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA} }

// newKey generates an OpenPGP key and returns it with its armored public key.
func newKey(t testing.TB, cfg *packet.Config) (*openpgp.Entity, string) {
	t.Helper()
	e, err := openpgp.NewEntity("Test Signer", "", "signer@example.com", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return e, buf.String()
}

// detachSign makes a binary detached signature, as provider releases carry.
func detachSign(t testing.TB, e *openpgp.Entity, data []byte, cfg *packet.Config) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := openpgp.DetachSign(&buf, e, bytes.NewReader(data), cfg); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// makeZip builds a real zip holding one provider binary.
func makeZip(t testing.TB, name string, size int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	f, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(bytes.Repeat([]byte("provider binary "), size/16+1)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// release is one signed provider release for one platform.
type release struct {
	addr     config.ProviderAddr // Hostname empty until a fixture sets it
	version  string
	platform config.Platform
	filename string
	zip      []byte
	sums     []byte
	sig      []byte
	signer   *openpgp.Entity
	armored  string
}

func newRelease(t testing.TB) *release {
	t.Helper()
	r := &release{
		addr:     config.ProviderAddr{Namespace: "hashicorp", Type: "null"},
		version:  "3.2.1",
		platform: config.Platform{OS: "linux", Arch: "amd64"},
		filename: "terraform-provider-null_3.2.1_linux_amd64.zip",
	}
	r.zip = makeZip(t, "terraform-provider-null_v3.2.1_x5", 4096)
	other := makeZip(t, "terraform-provider-null_v3.2.1_x5.exe", 100)
	r.sums = fmt.Appendf(nil, "%s  terraform-provider-null_3.2.1_darwin_arm64.zip\n%s  %s\n%s  terraform-provider-null_3.2.1_windows_amd64.zip\n",
		sha256hex(other), sha256hex(r.zip), r.filename, sha256hex(other[1:]))
	r.signer, r.armored = newKey(t, keyConfig())
	r.sig = detachSign(t, r.signer, r.sums, nil)
	return r
}

// seen is one request a test server received.
type seen struct {
	Host, Path, Auth, UA string
}

// recorder wraps handlers and remembers every request.
type recorder struct {
	mu   sync.Mutex
	reqs []seen
}

func (r *recorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.reqs = append(r.reqs, seen{Host: req.Host, Path: req.URL.Path, Auth: req.Header.Get("Authorization"), UA: req.Header.Get("User-Agent")})
		r.mu.Unlock()
		h.ServeHTTP(w, req)
	})
}

func (r *recorder) all() []seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]seen(nil), r.reqs...)
}

func (r *recorder) count(pathPrefix string) int {
	n := 0
	for _, s := range r.all() {
		if strings.HasPrefix(s.Path, pathPrefix) {
			n++
		}
	}
	return n
}

func serveJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func newTLSServer(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func hostOf(srv *httptest.Server) string { return strings.TrimPrefix(srv.URL, "https://") }

// logBuffer collects the client's debug log so tests can check that no
// token ever reaches it.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testClient builds a Client trusting httptest's certificate, with fast
// retries, testToken for tokenHost, and a debug log checked at cleanup for
// leaked tokens.
func testClient(t testing.TB, srv *httptest.Server, tokenHost string, opts ...Option) *Client {
	t.Helper()
	logs := &logBuffer{}
	t.Cleanup(func() {
		if strings.Contains(logs.String(), testToken) {
			t.Errorf("token leaked into the log:\n%s", logs.String())
		}
	})
	base := []Option{
		WithHTTPClient(srv.Client()),
		WithRetry(3, time.Millisecond, 5*time.Millisecond),
		WithTokens(func(h string) string {
			if h == tokenHost {
				return testToken
			}
			return ""
		}),
		WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		WithUserAgent("upstream-test/1"),
	}
	c, err := New(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// providerFixture serves one release: a registry API server and a separate
// files server (another host:port, so tokens must not reach it).
type providerFixture struct {
	rel *release
	// Served content; tweak may replace any before the servers start.
	zip, sums, sig []byte
	keys           []SigningKey
	packages       map[string]any
	// zipHandler, when set, serves the package instead of zip.
	zipHandler http.HandlerFunc
	// relative makes the download answer use URLs relative to itself.
	relative bool
	// versions, when set, is the versions answer's "versions" list.
	versions []any

	api, files *httptest.Server
	rec        *recorder
}

func newProviderFixture(t testing.TB, tweak func(*providerFixture)) *providerFixture {
	t.Helper()
	rel := newRelease(t)
	f := &providerFixture{
		rel:  rel,
		zip:  rel.zip,
		sums: rel.sums,
		sig:  rel.sig,
		keys: []SigningKey{{KeyID: rel.signer.PrimaryKey.KeyIdString(), ASCIIArmor: rel.armored}},
		packages: map[string]any{rel.platform.String(): map[string]any{
			"hashes":       []string{"zh:" + sha256hex(rel.zip), "h1:notcheckedhere="},
			"package_size": len(rel.zip),
		}},
		rec: &recorder{},
	}
	if tweak != nil {
		tweak(f)
	}
	files := http.NewServeMux()
	files.HandleFunc("GET /files/{name}", func(w http.ResponseWriter, r *http.Request) {
		switch name := r.PathValue("name"); name {
		case rel.filename:
			if f.zipHandler != nil {
				f.zipHandler(w, r)
				return
			}
			_, _ = w.Write(f.zip)
		case "terraform-provider-null_3.2.1_SHA256SUMS":
			_, _ = w.Write(f.sums)
		case "terraform-provider-null_3.2.1_SHA256SUMS.sig":
			_, _ = w.Write(f.sig)
		default:
			http.NotFound(w, r)
		}
	})
	f.files = newTLSServer(t, f.rec.wrap(files))

	api := http.NewServeMux()
	api.HandleFunc("GET /.well-known/terraform.json", func(w http.ResponseWriter, r *http.Request) {
		serveJSON(w, map[string]any{"providers.v1": "/v1/providers/", "modules.v1": "/v1/modules/", "login.v1": map[string]any{"client": "x"}})
	})
	api.HandleFunc("GET /v1/providers/hashicorp/null/versions", func(w http.ResponseWriter, r *http.Request) {
		if f.versions != nil {
			serveJSON(w, map[string]any{"versions": f.versions})
			return
		}
		serveJSON(w, map[string]any{
			"versions": []any{
				map[string]any{"version": "3.2.1", "protocols": []string{"5.0"}, "platforms": []any{
					map[string]string{"os": "linux", "arch": "amd64"}, map[string]string{"os": "darwin", "arch": "arm64"}}},
				map[string]any{"version": "3.2.0", "protocols": []string{"5.0"}},
			},
			"warnings": []string{"this provider is deprecated"},
		})
	})
	api.HandleFunc("GET /v1/providers/hashicorp/null/{version}/download/{os}/{arch}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("version") != rel.version || r.PathValue("os") != rel.platform.OS || r.PathValue("arch") != rel.platform.Arch {
			http.NotFound(w, r)
			return
		}
		base := f.files.URL + "/files/"
		if f.relative {
			base = "../../../../../../../files-via-api/"
		}
		serveJSON(w, map[string]any{
			"protocols":             []string{"5.0"},
			"os":                    rel.platform.OS,
			"arch":                  rel.platform.Arch,
			"filename":              rel.filename,
			"download_url":          base + rel.filename,
			"shasums_url":           base + "terraform-provider-null_3.2.1_SHA256SUMS",
			"shasums_signature_url": base + "terraform-provider-null_3.2.1_SHA256SUMS.sig",
			"shasum":                sha256hex(rel.zip),
			"signing_keys":          map[string]any{"gpg_public_keys": signingKeysJSON(f.keys)},
			"packages":              f.packages,
		})
	})
	// Relative URLs land here, on the API host; pass them to the files host.
	api.HandleFunc("GET /files-via-api/{name}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, f.files.URL+"/files/"+r.PathValue("name"), http.StatusFound)
	})
	f.api = newTLSServer(t, f.rec.wrap(api))
	return f
}

func signingKeysJSON(keys []SigningKey) []any {
	out := []any{}
	for _, k := range keys {
		out = append(out, map[string]string{"key_id": k.KeyID, "ascii_armor": k.ASCIIArmor, "trust_signature": "", "source": "", "source_url": ""})
	}
	return out
}

// addr is the fixture's provider on its API host.
func (f *providerFixture) addr() config.ProviderAddr {
	a := f.rel.addr
	a.Hostname = hostOf(f.api)
	return a
}

// client returns a client holding testToken for the API host.
func (f *providerFixture) client(t testing.TB, opts ...Option) *Client {
	return testClient(t, f.api, hostOf(f.api), opts...)
}

// pkg runs ProviderDownload for the fixture's release.
func (f *providerFixture) pkg(t testing.TB, c *Client) *ProviderPackage {
	t.Helper()
	p, err := c.ProviderDownload(t.Context(), f.addr(), f.rel.version, f.rel.platform)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// readAllFrom reads a file from its start.
func readAllFrom(t testing.TB, r io.ReadSeeker) []byte {
	t.Helper()
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
