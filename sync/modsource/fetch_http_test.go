package modsource_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ulikunitz/xz"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/modsource"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/upstream"
)

// compressCLI pipes data through a real compressor (bzip2 -c), as a module
// author's release tooling would.
func compressCLI(t testing.TB, data []byte, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return out
}

func xzBytes(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := xz.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// route is one canned answer of httpWorld.
type route struct {
	status int
	header map[string]string
	body   []byte
}

// httpWorld serves routes by path and records each request's path, query
// and Authorization header.
type httpWorld struct {
	srv    *httptest.Server
	routes map[string]route
	mu     sync.Mutex
	seen   []string
}

func newHTTPWorld(t *testing.T) (*httpWorld, *upstream.Client) {
	t.Helper()
	hw := &httpWorld{routes: map[string]route{}}
	hw.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hw.mu.Lock()
		hw.seen = append(hw.seen, r.URL.Path+"?"+r.URL.RawQuery+" auth="+r.Header.Get("Authorization"))
		rt, ok := hw.routes[r.URL.Path]
		hw.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		for k, v := range rt.header {
			w.Header().Set(k, strings.ReplaceAll(v, "{base}", hw.srv.URL))
		}
		if rt.status != 0 {
			w.WriteHeader(rt.status)
		}
		_, _ = w.Write(bytes.ReplaceAll(rt.body, []byte("{base}"), []byte(hw.srv.URL)))
	}))
	t.Cleanup(hw.srv.Close)
	up, err := upstream.New(upstream.WithRetry(0, time.Millisecond, time.Millisecond),
		upstream.WithTokens(func(h string) string {
			if h == "registry.example" {
				return "registry-token"
			}
			return ""
		}))
	if err != nil {
		t.Fatal(err)
	}
	return hw, up
}

func (hw *httpWorld) requests() []string {
	hw.mu.Lock()
	defer hw.mu.Unlock()
	return append([]string(nil), hw.seen...)
}

func TestFetchFormats(t *testing.T) {
	plain := tarBytes(t, false, file("main.tf", "# pkg\n"), exe("bin/run.sh", "#!/bin/sh\n"), file("modules/a/a.tf", "# a\n"))
	zipped := zipBytes(t, file("main.tf", "# pkg\n"), exe("bin/run.sh", "#!/bin/sh\n"), file("modules/a/a.tf", "# a\n"))
	gz := tarBytes(t, true, file("main.tf", "# pkg\n"), exe("bin/run.sh", "#!/bin/sh\n"), file("modules/a/a.tf", "# a\n"))
	bz := compressCLI(t, plain, "bzip2", "-c")
	xzd := xzBytes(t, plain)
	hw, up := newHTTPWorld(t)
	for p, b := range map[string][]byte{"/p.zip": zipped, "/p.tar.gz": gz, "/p.tgz": gz, "/p.tar.xz": xzd, "/p.txz": xzd,
		"/p.tar.bz2": bz, "/p.tar.tbz2": bz, "/blob": bz, "/dl.bin": xzd, "/plain": plain, "/p.tar": plain} {
		hw.routes[p] = route{body: b}
	}
	hw.routes["/header"] = route{status: http.StatusNoContent, header: map[string]string{"X-Terraform-Get": "{base}/p.tar.xz"}}
	hw.routes["/header-subdir"] = route{status: http.StatusNoContent, header: map[string]string{"X-Terraform-Get": "{base}/p.zip//modules/a"}}
	hw.routes["/page"] = route{header: map[string]string{"Content-Type": "text/html"},
		body: []byte(`<!DOCTYPE html><html><head><title>x</title><meta name="terraform-get" content="{base}/p.tgz"></head><body></body></html>`)}
	hw.routes["/chain"] = route{status: http.StatusNoContent, header: map[string]string{"X-Terraform-Get": "{base}/header"}}
	hw.routes["/loop"] = route{status: http.StatusNoContent, header: map[string]string{"X-Terraform-Get": "{base}/loop"}}
	hw.routes["/relative"] = route{status: http.StatusNoContent, header: map[string]string{"X-Terraform-Get": "./p.zip"}}
	hw.routes["/shorthand"] = route{status: http.StatusNoContent, header: map[string]string{"X-Terraform-Get": "github.com/org/repo"}}
	hw.routes["/nothing"] = route{body: []byte("<html><head></head><body>no meta</body></html>")}
	hw.routes["/escape"] = route{status: http.StatusNoContent, header: map[string]string{"X-Terraform-Get": "{base}/p.zip//../x"}}
	base := hw.srv.URL
	for _, tc := range []struct {
		name, source, wantFile, subdir string
	}{
		{"zip", base + "/p.zip", "bin/run.sh", ""},
		{"tar.gz", base + "/p.tar.gz", "bin/run.sh", ""},
		{"tgz", base + "/p.tgz", "bin/run.sh", ""},
		{"tar.xz", base + "/p.tar.xz", "bin/run.sh", ""},
		{"txz", base + "/p.txz", "bin/run.sh", ""},
		{"tar.bz2", base + "/p.tar.bz2", "bin/run.sh", ""},
		{"tar.tbz2", base + "/p.tar.tbz2", "bin/run.sh", ""},
		{"archive=tar.bz2", base + "/blob?archive=tar.bz2", "bin/run.sh", ""},
		{"archive=txz", base + "/dl.bin?archive=txz", "bin/run.sh", ""},
		{"X-Terraform-Get", base + "/header", "bin/run.sh", ""},
		{"X-Terraform-Get with subdir", base + "/header-subdir", "a.tf", ""},
		{"meta tag", base + "/page", "bin/run.sh", ""},
		{"chain", base + "/chain//modules/a", "modules/a/a.tf", "modules/a"},
		{"direct, anonymous", modsource.DirectSource(base+"/blob", ""), "bin/run.sh", ""},
		{"direct, credentials", modsource.DirectSource(base+"/dl.bin", "registry.example"), "bin/run.sh", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "pkg")
			pkg, err := modsource.New(modsource.WithHTTPFetcher(up)).Fetch(t.Context(), tc.source, dst)
			if err != nil {
				t.Fatal(err)
			}
			if pkg.Subdir != tc.subdir {
				t.Fatalf("subdir %q, want %q", pkg.Subdir, tc.subdir)
			}
			fi, err := os.Stat(filepath.Join(dst, tc.wantFile))
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(tc.wantFile, ".sh") && fi.Mode()&0o111 == 0 {
				t.Fatalf("%s lost its executable bit: %v", tc.wantFile, fi.Mode())
			}
		})
	}
	for _, tc := range []struct {
		name, source string
		want         error
	}{
		{"plain tar is asked for X-Terraform-Get, has none", base + "/p.tar", modsource.ErrUnsupportedSource},
		{"direct plain tar", modsource.DirectSource(base+"/plain", ""), modsource.ErrInvalidArchive},
		{"name and content differ", base + "/blob?archive=zip", modsource.ErrInvalidArchive},
		{"no header, no meta", base + "/nothing", modsource.ErrUnsupportedSource},
		{"relative X-Terraform-Get", base + "/relative", modsource.ErrUnsupportedSource},
		{"shorthand X-Terraform-Get", base + "/shorthand", modsource.ErrUnsupportedSource},
		{"loop", base + "/loop", modsource.ErrUnsupportedSource},
		{"X-Terraform-Get subdir escapes", base + "/escape", manifest.ErrUnsafePath},
		{"X-Terraform-Get 404", base + "/missing", upstream.ErrHTTPStatus},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := modsource.New(modsource.WithHTTPFetcher(up)).Fetch(t.Context(), tc.source, filepath.Join(t.TempDir(), "pkg"))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	// The registry token went with the one direct download that asked for
	// it, and nowhere else.
	withToken := 0
	for _, r := range hw.requests() {
		if strings.HasSuffix(r, "auth=Bearer registry-token") {
			withToken++
			if !strings.HasPrefix(r, "/dl.bin?") {
				t.Errorf("token sent with %s", r)
			}
		}
		if strings.HasPrefix(r, "/header?") && !strings.Contains(r, "terraform-get=1") {
			t.Errorf("X-Terraform-Get lookup without terraform-get=1: %s", r)
		}
	}
	if withToken != 1 {
		t.Errorf("%d requests carried the registry token, want 1", withToken)
	}
}

func TestTerraformGetMeta(t *testing.T) {
	for _, tc := range []struct{ page, want string }{
		{`<html><head><meta name="terraform-get" content="git::https://x/r.git"></head></html>`, "git::https://x/r.git"},
		{`<html><head><META NAME="terraform-get" CONTENT="https://x/a.zip"><meta name="terraform-get" content="second"></head>`, "https://x/a.zip"},
		{`<html><head></head><body><meta name="terraform-get" content="too late"></body></html>`, ""},
		{`<html><head><meta name="go-import" content="x"></head></html>`, ""},
	} {
		got, err := modsource.TerraformGetMeta(strings.NewReader(tc.page))
		if err != nil || got != tc.want {
			t.Errorf("TerraformGetMeta(%q) = %q, %v; want %q", tc.page, got, err, tc.want)
		}
	}
}
