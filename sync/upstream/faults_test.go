package upstream_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testupstream"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/upstream"
)

// These tests run the client against a real registry on 127.0.0.1 that
// misbehaves on purpose, as flaky links and hostile servers do.

// faultToken is the registry token of registry.opentofu.org (WithTokens), as
// users set it. No log line, no error, and no other host may see it.
const faultToken = "tok-fault-7f3a9c"

var (
	widget   = config.ProviderAddr{Hostname: config.DefaultHostname, Namespace: "acme", Type: "widget"}
	linux    = config.Platform{OS: "linux", Arch: "amd64"}
	zipPath  = "/files/acme/widget/1.0.0/terraform-provider-widget_1.0.0_linux_amd64.zip"
	apiPath  = "/v1/providers/acme/widget/"
	versions = "/v1/providers/acme/widget/versions"
	download = "/v1/providers/acme/widget/1.0.0/download/linux/amd64"
)

// syncBuffer is a log sink safe for the client's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// faultServer is a test upstream standing in for registry.opentofu.org
// with acme/widget 1.0.0 for linux_amd64.
func faultServer(t *testing.T) *testupstream.Server {
	t.Helper()
	s := testupstream.New(t, testupstream.WithPackageSize(32<<10))
	s.AddProvider("acme", "widget", "1.0.0", "linux_amd64")
	return s
}

// faultClient returns a client for s with fast retries, the token in the
// environment as OpenTofu reads it, trusting the CAs of s and of others,
// and a debug log that is checked for the token when the test ends.
func faultClient(t *testing.T, s *testupstream.Server, opts []upstream.Option, others ...*testupstream.Server) *upstream.Client {
	t.Helper()
	pool := x509.NewCertPool()
	for _, srv := range append([]*testupstream.Server{s}, others...) {
		pool.AppendCertsFromPEM(srv.CACertPEM)
	}
	logs := &syncBuffer{}
	t.Cleanup(func() {
		if strings.Contains(logs.String(), faultToken) {
			t.Errorf("the token reached the log:\n%s", logs.String())
		}
	})
	base := []upstream.Option{
		upstream.WithHTTPClient(&http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}),
		upstream.WithHostServices(map[string]map[string]string{config.DefaultHostname: s.Services()}),
		upstream.WithRetry(3, time.Millisecond, 10*time.Millisecond),
		upstream.WithTokens(func(host string) string {
			if host == config.DefaultHostname {
				return faultToken
			}
			return ""
		}),
		upstream.WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
	}
	c, err := upstream.New(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func spool(t *testing.T) *os.File {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "spool-*.zip")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// noSecret fails when err repeats the token.
func noSecret(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), faultToken) {
		t.Errorf("error carries the token: %v", err)
	}
}

// TestDownloadRidesOutFaults: each fault hits the first attempts, and the
// provider's package still arrives whole, verified, in one spool file.
func TestDownloadRidesOutFaults(t *testing.T) {
	tests := []struct {
		name    string
		path    string
		inject  func(s *testupstream.Server, path string)
		opts    []upstream.Option
		minWait time.Duration
	}{
		{name: "connection reset mid-download", path: zipPath, inject: func(s *testupstream.Server, p string) {
			s.MisbehaveNext(p, 2, testupstream.DropConnection(10<<10))
		}},
		{name: "connection reset before the status line", path: zipPath, inject: func(s *testupstream.Server, p string) {
			s.MisbehaveNext(p, 2, testupstream.DropConnection(-1))
		}},
		{name: "body shorter than Content-Length", path: zipPath, inject: func(s *testupstream.Server, p string) {
			s.MisbehaveNext(p, 2, testupstream.TruncateBody(20<<10))
		}},
		{name: "500s then success", path: zipPath, inject: func(s *testupstream.Server, p string) {
			s.FailNext(p, 3, http.StatusInternalServerError, "")
		}},
		{name: "429 with Retry-After", path: zipPath, minWait: 900 * time.Millisecond, inject: func(s *testupstream.Server, p string) {
			s.FailNext(p, 1, http.StatusTooManyRequests, "1")
		}},
		{name: "body that never ends", path: zipPath, opts: []upstream.Option{upstream.WithStallTimeout(150 * time.Millisecond)},
			inject: func(s *testupstream.Server, p string) { s.MisbehaveNext(p, 1, testupstream.Stall(5000)) }},
		{name: "no answer at all", path: zipPath, opts: []upstream.Option{upstream.WithStallTimeout(150 * time.Millisecond)},
			inject: func(s *testupstream.Server, p string) { s.MisbehaveNext(p, 1, testupstream.Hang()) }},
		{name: "SHA256SUMS cut short", path: "/files/acme/widget/1.0.0/terraform-provider-widget_1.0.0_SHA256SUMS", inject: func(s *testupstream.Server, p string) {
			s.MisbehaveNext(p, 2, testupstream.TruncateBody(20))
		}},
		{name: "versions answer cut short", path: versions, inject: func(s *testupstream.Server, p string) {
			s.MisbehaveNext(p, 2, testupstream.TruncateBody(30))
		}},
		{name: "download answer reset mid-body", path: download, inject: func(s *testupstream.Server, p string) {
			s.MisbehaveNext(p, 1, testupstream.DropConnection(100))
		}},
		{name: "download API reset and 502", path: download, inject: func(s *testupstream.Server, p string) {
			s.MisbehaveNext(p, 1, testupstream.DropConnection(-1))
			s.FailNext(p, 1, http.StatusBadGateway, "")
		}},
		{name: "versions API 503 with Retry-After", path: versions, minWait: 900 * time.Millisecond, inject: func(s *testupstream.Server, p string) {
			s.FailNext(p, 1, http.StatusServiceUnavailable, "1")
		}},
		{name: "download API hangs", path: download, opts: []upstream.Option{upstream.WithTimeout(200 * time.Millisecond)},
			inject: func(s *testupstream.Server, p string) { s.MisbehaveNext(p, 1, testupstream.Hang()) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := faultServer(t)
			c := faultClient(t, s, tt.opts)
			tt.inject(s, tt.path)
			start := time.Now()

			vs, err := c.ProviderVersions(t.Context(), widget)
			if err != nil || len(vs.Versions) != 1 {
				t.Fatalf("versions: %v", err)
			}
			pkg, err := c.ProviderDownload(t.Context(), widget, "1.0.0", linux)
			if err != nil {
				t.Fatal(err)
			}
			prov, err := c.VerifyProvenance(t.Context(), pkg)
			if err != nil || prov.Sums[pkg.Filename] != pkg.SHA256 {
				t.Fatalf("provenance: %v", err)
			}
			f := spool(t)
			sum, n, err := c.DownloadPackage(t.Context(), pkg, f)
			if err != nil {
				t.Fatal(err)
			}
			want := s.Zip("acme", "widget", "1.0.0", "linux_amd64")
			if sum != s.ZipSHA256("acme", "widget", "1.0.0", "linux_amd64") || n != int64(len(want)) {
				t.Fatalf("got %s (%d bytes)", sum, n)
			}
			if got, _ := os.ReadFile(f.Name()); !bytes.Equal(got, want) {
				t.Fatalf("the spool holds %d bytes, not the package's %d: a failed attempt left debris", len(got), len(want))
			}
			if d := time.Since(start); d < tt.minWait {
				t.Errorf("took %s: the server's Retry-After was not honoured", d)
			}
			// Every fault was used up, so the client did come back for more.
			if got := pathCount(s, tt.path); got < 2 {
				t.Errorf("%s requested %d times; the fault was never retried", tt.path, got)
			}
		})
	}
}

func pathCount(s *testupstream.Server, path string) int {
	n := 0
	for _, r := range s.Requests() {
		if r.Path == path {
			n++
		}
	}
	return n
}

// TestDownloadGivesUpCleanly: a fault that never clears ends in an error
// that says what broke and where, after a bounded number of attempts.
func TestDownloadGivesUpCleanly(t *testing.T) {
	tests := []struct {
		name     string
		fault    testupstream.Misbehavior
		status   int
		opts     []upstream.Option
		want     error
		wantText string
		attempts int
	}{
		{name: "connection reset mid-download", fault: testupstream.DropConnection(10 << 10), want: syscall.ECONNRESET, attempts: 4},
		{name: "body shorter than Content-Length", fault: testupstream.TruncateBody(10 << 10), want: io.ErrUnexpectedEOF, wantText: "after 10240 bytes", attempts: 4},
		{name: "body that never ends", fault: testupstream.Stall(100), want: upstream.ErrStalled, attempts: 2,
			opts: []upstream.Option{upstream.WithStallTimeout(100 * time.Millisecond), upstream.WithRetry(1, time.Millisecond, time.Millisecond)}},
		{name: "500 forever", status: http.StatusInternalServerError, want: upstream.ErrHTTPStatus, wantText: "500", attempts: 4},
		{name: "429 forever", status: http.StatusTooManyRequests, want: upstream.ErrHTTPStatus, wantText: "429", attempts: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := faultServer(t)
			c := faultClient(t, s, tt.opts)
			pkg, err := c.ProviderDownload(t.Context(), widget, "1.0.0", linux)
			if err != nil {
				t.Fatal(err)
			}
			if tt.fault != nil {
				s.MisbehaveNext(zipPath, 99, tt.fault)
			} else {
				s.FailNext(zipPath, 99, tt.status, "")
			}
			sum, _, err := c.DownloadPackage(t.Context(), pkg, spool(t))
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			noSecret(t, err)
			if sum != "" {
				t.Errorf("a failed download returned a hash")
			}
			for _, part := range []string{"acme/widget", "1.0.0", "linux_amd64", s.Host + zipPath, tt.wantText} {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not name %q", err, part)
				}
			}
			if got := s.Counts().Zip; got != tt.attempts {
				t.Errorf("%d attempts, want %d", got, tt.attempts)
			}
		})
	}
}

// TestHostileAPIAnswers: malformed and oversized answers are refused at
// once (no retry can fix them), naming the URL; the client never holds
// more than the size limit.
func TestHostileAPIAnswers(t *testing.T) {
	huge := int64(upstream.MaxJSONSize) + 1
	tests := []struct {
		name  string
		path  string
		fault testupstream.Misbehavior
		want  error
	}{
		{"malformed versions JSON", versions, testupstream.Respond(200, "application/json", []byte(`{"versions":[{"version":`)), upstream.ErrProtocol},
		{"versions answer is HTML", versions, testupstream.Respond(200, "text/html", []byte("<html>maintenance</html>")), upstream.ErrProtocol},
		{"malformed download JSON", download, testupstream.Respond(200, "application/json", []byte(`{"os":"linux","arch":`)), upstream.ErrProtocol},
		{"download JSON of the wrong shape", download, testupstream.Respond(200, "application/json", []byte(`["not","an","object"]`)), upstream.ErrProtocol},
		{"oversized versions JSON with Content-Length", versions, testupstream.OversizedJSON(huge, false), upstream.ErrTooLarge},
		{"oversized versions JSON, chunked", versions, testupstream.OversizedJSON(huge, true), upstream.ErrTooLarge},
		{"oversized download JSON, chunked", download, testupstream.OversizedJSON(64<<20, true), upstream.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := faultServer(t)
			c := faultClient(t, s, nil)
			s.MisbehaveNext(tt.path, 1, tt.fault)
			var err error
			if tt.path == versions {
				_, err = c.ProviderVersions(t.Context(), widget)
			} else {
				_, err = c.ProviderDownload(t.Context(), widget, "1.0.0", linux)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			noSecret(t, err)
			if !strings.Contains(err.Error(), s.URL+tt.path) {
				t.Errorf("error %q does not name the URL %s", err, s.URL+tt.path)
			}
			if got := pathCount(s, tt.path); got != 1 {
				t.Errorf("%s requested %d times; a hostile answer is not worth retrying", tt.path, got)
			}
		})
	}
	t.Run("oversized SHA256SUMS", func(t *testing.T) {
		s := faultServer(t)
		c := faultClient(t, s, nil)
		pkg, err := c.ProviderDownload(t.Context(), widget, "1.0.0", linux)
		if err != nil {
			t.Fatal(err)
		}
		s.MisbehaveNext("/files/acme/widget/1.0.0/terraform-provider-widget_1.0.0_SHA256SUMS", 1, testupstream.OversizedJSON(huge, true))
		if _, err := c.VerifyProvenance(t.Context(), pkg); !errors.Is(err, upstream.ErrTooLarge) || !strings.Contains(err.Error(), "_SHA256SUMS") {
			t.Fatalf("error %v, want ErrTooLarge naming the SHA256SUMS URL", err)
		}
	})
}

// TestRedirectsAreContained: a redirect to a scheme other than http(s) is
// refused, and the registry token never follows a redirect to another
// host, while the answer from there is still used.
func TestRedirectsAreContained(t *testing.T) {
	t.Run("non-http schemes", func(t *testing.T) {
		for _, tc := range []struct{ path, location string }{
			{versions, "file:///etc/passwd"},
			{download, "ftp://127.0.0.1/download.json"},
			{zipPath, "file:///etc/shadow"},
			{zipPath, "gopher://127.0.0.1:70/1"},
		} {
			t.Run(tc.path+" to "+tc.location, func(t *testing.T) {
				s := faultServer(t)
				c := faultClient(t, s, nil)
				pkg, err := c.ProviderDownload(t.Context(), widget, "1.0.0", linux)
				if err != nil {
					t.Fatal(err)
				}
				before := pathCount(s, tc.path)
				s.MisbehaveNext(tc.path, 99, testupstream.Redirect(tc.location))
				switch tc.path {
				case versions:
					_, err = c.ProviderVersions(t.Context(), widget)
				case download:
					_, err = c.ProviderDownload(t.Context(), widget, "1.0.0", linux)
				default:
					_, _, err = c.DownloadPackage(t.Context(), pkg, spool(t))
				}
				if !errors.Is(err, upstream.ErrProtocol) || !strings.Contains(err.Error(), tc.location) {
					t.Fatalf("error %v, want ErrProtocol naming %s", err, tc.location)
				}
				if got := pathCount(s, tc.path) - before; got != 1 {
					t.Errorf("%s requested %d times; a redirect to %s is final", tc.path, got, tc.location)
				}
			})
		}
	})

	t.Run("another host", func(t *testing.T) {
		s := faultServer(t)
		other := faultServer(t) // a registry on another port, with its own CA
		c := faultClient(t, s, nil, other)
		s.MisbehaveNext(versions, 1, testupstream.Redirect(other.URL+versions))
		s.MisbehaveNext(download, 1, testupstream.Redirect(other.URL+download))
		vs, err := c.ProviderVersions(t.Context(), widget)
		if err != nil || len(vs.Versions) != 1 {
			t.Fatalf("versions through a redirect: %v", err)
		}
		pkg, err := c.ProviderDownload(t.Context(), widget, "1.0.0", linux)
		if err != nil {
			t.Fatal(err)
		}
		// Relative URLs in the answer resolve against the host that gave it.
		if !strings.HasPrefix(pkg.DownloadURL, other.URL+"/") {
			t.Errorf("download_url %s does not resolve against %s", pkg.DownloadURL, other.URL)
		}
		if _, _, err := c.DownloadPackage(t.Context(), pkg, spool(t)); err != nil {
			t.Fatal(err)
		}
		assertAuth(t, s, "Bearer "+faultToken, versions, download)
		assertAuth(t, other, "", versions, download, zipPath)
	})

	t.Run("same port, other host name", func(t *testing.T) {
		s := faultServer(t)
		c := faultClient(t, s, nil)
		// The test certificate is also valid for localhost: only the name differs.
		s.MisbehaveNext(versions, 1, testupstream.Redirect(strings.Replace(s.URL, "127.0.0.1", "localhost", 1)+versions))
		if _, err := c.ProviderVersions(t.Context(), widget); err != nil {
			t.Fatal(err)
		}
		reqs := s.Requests()
		if len(reqs) != 2 || reqs[0].Authorization != "Bearer "+faultToken || reqs[1].Authorization != "" {
			t.Fatalf("want the token on the first request only, got %+v", redactAll(reqs))
		}
	})

	t.Run("same host keeps the token", func(t *testing.T) {
		s := faultServer(t)
		c := faultClient(t, s, nil)
		s.MisbehaveNext(versions, 1, testupstream.Redirect(s.URL+"/v1/providers/acme/widget/versions?moved=1"))
		if _, err := c.ProviderVersions(t.Context(), widget); err != nil {
			t.Fatal(err)
		}
		reqs := s.Requests()
		if len(reqs) != 2 || reqs[1].RawQuery != "moved=1" || reqs[1].Authorization != "Bearer "+faultToken {
			t.Fatalf("want the token on both requests, got %+v", redactAll(reqs))
		}
	})
}

// assertAuth checks the Authorization every request to paths carried, and
// that each path was requested.
func assertAuth(t *testing.T, s *testupstream.Server, want string, paths ...string) {
	t.Helper()
	seen := map[string]bool{}
	for _, r := range s.Requests() {
		for _, p := range paths {
			if r.Path == p {
				seen[p] = true
				if r.Authorization != want {
					t.Errorf("%s%s: Authorization %q, want %q", s.Host, p, redact(r.Authorization), redact(want))
				}
			}
		}
	}
	for _, p := range paths {
		if !seen[p] {
			t.Errorf("%s%s was never requested", s.Host, p)
		}
	}
}

func redact(auth string) string { return strings.ReplaceAll(auth, faultToken, "<token>") }

func redactAll(reqs []testupstream.RecordedRequest) []string {
	out := make([]string, len(reqs))
	for i, r := range reqs {
		out[i] = fmt.Sprintf("%s %s?%s auth=%q", r.Method, r.Path, r.RawQuery, redact(r.Authorization))
	}
	return out
}
