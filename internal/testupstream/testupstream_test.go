package testupstream_test

import (
	"archive/zip"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testupstream"
)

// The client below follows the provider protocol the way OpenTofu does, with
// nothing but net/http, so the server is checked against the protocol and
// not against our own client.

var (
	errZipChecksum   = errors.New("zip sha256 differs from shasum")
	errSumsChecksum  = errors.New("SHA256SUMS line differs from shasum")
	errNoKeys        = errors.New("registry returned no signing keys")
	errPackagesEntry = errors.New("packages entry differs")
)

type client struct {
	t  *testing.T
	hc *http.Client
}

// get fetches u and returns the final URL (after redirects), status and body.
func (c client) get(u string) (*url.URL, int, []byte) {
	c.t.Helper()
	resp, err := c.hc.Get(u)
	if err != nil {
		c.t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("reading %s: %v", u, err)
	}
	return resp.Request.URL, resp.StatusCode, body
}

func (c client) getJSON(u string, v any) *url.URL {
	c.t.Helper()
	final, status, body := c.get(u)
	if status != http.StatusOK {
		c.t.Fatalf("GET %s: status %d: %s", u, status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		c.t.Fatalf("GET %s: %v in %s", u, err, body)
	}
	return final
}

func resolve(t *testing.T, base *url.URL, ref string) string {
	t.Helper()
	r, err := url.Parse(ref)
	if err != nil {
		t.Fatalf("parsing %q: %v", ref, err)
	}
	return base.ResolveReference(r).String()
}

type downloadJSON struct {
	Protocols           []string `json:"protocols"`
	OS                  string   `json:"os"`
	Arch                string   `json:"arch"`
	Filename            string   `json:"filename"`
	DownloadURL         string   `json:"download_url"`
	ShasumsURL          string   `json:"shasums_url"`
	ShasumsSignatureURL string   `json:"shasums_signature_url"`
	Shasum              string   `json:"shasum"`
	SigningKeys         struct {
		GPGPublicKeys []struct {
			KeyID      string `json:"key_id"`
			ASCIIArmor string `json:"ascii_armor"`
		} `json:"gpg_public_keys"`
	} `json:"signing_keys"`
	Packages map[string]struct {
		Hashes      []string `json:"hashes"`
		PackageSize int64    `json:"package_size"`
	} `json:"packages"`
}

// providersURL runs discovery and returns the resolved providers.v1 URL.
func (c client) providersURL(base string) *url.URL {
	c.t.Helper()
	var disco map[string]string
	final := c.getJSON(base+"/.well-known/terraform.json", &disco)
	u, err := url.Parse(resolve(c.t, final, disco["providers.v1"]))
	if err != nil {
		c.t.Fatal(err)
	}
	return u
}

// install downloads and verifies one package as OpenTofu does and returns
// the zip.
func (c client) install(base, namespace, typ, version, goos, goarch string) ([]byte, downloadJSON, error) {
	c.t.Helper()
	providers := c.providersURL(base)
	var dl downloadJSON
	dlURL := resolve(c.t, providers, fmt.Sprintf("%s/%s/%s/download/%s/%s", namespace, typ, version, goos, goarch))
	final := c.getJSON(dlURL, &dl)
	if dl.OS != goos || dl.Arch != goarch || !slices.Equal(dl.Protocols, []string{"5.0"}) {
		c.t.Fatalf("download JSON does not echo the request: %+v", dl)
	}
	_, _, sums := c.get(resolve(c.t, final, dl.ShasumsURL))
	_, _, sig := c.get(resolve(c.t, final, dl.ShasumsSignatureURL))
	_, _, zipBytes := c.get(resolve(c.t, final, dl.DownloadURL))

	var lineSum string
	sc := bufio.NewScanner(bytes.NewReader(sums))
	for sc.Scan() {
		hexSum, name, ok := strings.Cut(sc.Text(), "  ")
		if ok && name == dl.Filename {
			lineSum = hexSum
		}
	}
	if lineSum != dl.Shasum {
		return nil, dl, fmt.Errorf("%w: %q vs %q", errSumsChecksum, lineSum, dl.Shasum)
	}
	if got := sha256.Sum256(zipBytes); hex.EncodeToString(got[:]) != dl.Shasum {
		return nil, dl, errZipChecksum
	}
	if len(dl.SigningKeys.GPGPublicKeys) == 0 {
		return nil, dl, errNoKeys
	}
	var keyring openpgp.EntityList
	for _, k := range dl.SigningKeys.GPGPublicKeys {
		el, err := openpgp.ReadArmoredKeyRing(strings.NewReader(k.ASCIIArmor))
		if err != nil {
			c.t.Fatalf("key %s: %v", k.KeyID, err)
		}
		keyring = append(keyring, el...)
	}
	if _, err := openpgp.CheckDetachedSignature(keyring, bytes.NewReader(sums), bytes.NewReader(sig), nil); err != nil {
		return nil, dl, err
	}
	pkg, ok := dl.Packages[goos+"_"+goarch]
	if !ok || !slices.Equal(pkg.Hashes, []string{"zh:" + dl.Shasum}) || pkg.PackageSize != int64(len(zipBytes)) {
		return nil, dl, fmt.Errorf("%w: %+v", errPackagesEntry, pkg)
	}
	return zipBytes, dl, nil
}

func newClient(t *testing.T, s *testupstream.Server) client {
	return client{t: t, hc: s.Client()}
}

func TestProviderFlow(t *testing.T) {
	tests := []struct {
		name string
		opts []testupstream.Option
	}{
		{"https", nil},
		{"plain http", []testupstream.Option{testupstream.WithPlainHTTP()}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := testupstream.New(t, tc.opts...)
			s.AddProvider("hashicorp", "null", "3.10.0", "linux_amd64")
			s.AddProvider("hashicorp", "null", "3.2.1", "linux_amd64", "darwin_arm64", "windows_amd64")
			s.SetWarnings("hashicorp", "null", "use something else")
			c := newClient(t, s)

			var versions struct {
				Versions []struct {
					Version   string
					Protocols []string
					Platforms []struct{ OS, Arch string }
				}
				Warnings []string
			}
			c.getJSON(resolve(t, c.providersURL(s.URL), "hashicorp/null/versions"), &versions)
			if len(versions.Versions) != 2 || versions.Versions[0].Version != "3.2.1" || versions.Versions[1].Version != "3.10.0" {
				t.Fatalf("versions = %+v", versions.Versions)
			}
			if got := len(versions.Versions[0].Platforms); got != 3 {
				t.Errorf("3.2.1 has %d platforms, want 3", got)
			}
			if !slices.Equal(versions.Warnings, []string{"use something else"}) {
				t.Errorf("warnings = %v", versions.Warnings)
			}

			s.ResetCounts()
			zipBytes, dl, err := c.install(s.URL, "hashicorp", "null", "3.2.1", "linux", "amd64")
			if err != nil {
				t.Fatal(err)
			}
			if dl.Filename != "terraform-provider-null_3.2.1_linux_amd64.zip" {
				t.Errorf("filename = %s", dl.Filename)
			}
			if !strings.HasPrefix(dl.DownloadURL, "../") || !strings.HasPrefix(dl.ShasumsURL, "/") {
				t.Errorf("URLs are not relative: %s, %s", dl.DownloadURL, dl.ShasumsURL)
			}
			if dl.SigningKeys.GPGPublicKeys[0].KeyID != s.KeyID {
				t.Errorf("key id = %s, want %s", dl.SigningKeys.GPGPublicKeys[0].KeyID, s.KeyID)
			}
			if len(dl.Packages) != 3 {
				t.Errorf("packages lists %d platforms, want 3", len(dl.Packages))
			}
			if !bytes.Equal(zipBytes, s.Zip("hashicorp", "null", "3.2.1", "linux_amd64")) {
				t.Error("served zip differs from Zip()")
			}
			if s.ZipSHA256("hashicorp", "null", "3.2.1", "linux_amd64") != dl.Shasum {
				t.Error("ZipSHA256 differs from shasum")
			}
			checkZipEntry(t, zipBytes, "terraform-provider-null_v3.2.1", testupstream.DefaultPackageSize)
			want := testupstream.UpstreamCounts{Discovery: 1, Download: 1, Zip: 1, SHASums: 1, Signature: 1, Total: 5}
			if got := s.Counts(); got != want {
				t.Errorf("counts = %+v, want %+v", got, want)
			}

			sums, _ := s.SHA256SUMS("hashicorp", "null", "3.2.1")
			lines := strings.Split(strings.TrimSuffix(string(sums), "\n"), "\n")
			if len(lines) != 3 || !slices.IsSortedFunc(lines, func(a, b string) int { return strings.Compare(a[66:], b[66:]) }) {
				t.Errorf("SHA256SUMS is not one sorted line per platform:\n%s", sums)
			}
			win := s.Zip("hashicorp", "null", "3.2.1", "windows_amd64")
			checkZipEntry(t, win, "terraform-provider-null_v3.2.1.exe", testupstream.DefaultPackageSize)
		})
	}
}

func checkZipEntry(t *testing.T, zipBytes []byte, name string, size int64) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(zipBytes), int64(len(zipBytes)))
	if err != nil {
		t.Fatalf("not a zip: %v", err)
	}
	if len(zr.File) != 1 || zr.File[0].Name != name {
		t.Fatalf("zip entries = %v, want just %s", zr.File, name)
	}
	f := zr.File[0]
	if f.Mode().Perm() != 0o755 {
		t.Errorf("%s mode = %v, want 0755", name, f.Mode())
	}
	rc, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	n, err := io.Copy(io.Discard, rc) // also checks the CRC
	if err != nil || n != size {
		t.Errorf("%s: read %d bytes, err %v; want %d", name, n, err, size)
	}
}

func TestDeterministic(t *testing.T) {
	a := testupstream.New(t, testupstream.WithPlainHTTP())
	b := testupstream.New(t, testupstream.WithPlainHTTP())
	for _, s := range []*testupstream.Server{a, b} {
		s.AddProvider("acme", "thing", "1.0.0", "linux_amd64", "linux_arm64")
	}
	if a.ZipSHA256("acme", "thing", "1.0.0", "linux_amd64") != b.ZipSHA256("acme", "thing", "1.0.0", "linux_amd64") {
		t.Error("same identity, different zips")
	}
	if a.ZipSHA256("acme", "thing", "1.0.0", "linux_amd64") == a.ZipSHA256("acme", "thing", "1.0.0", "linux_arm64") {
		t.Error("different platforms, same zip")
	}
	if a.KeyID == b.KeyID {
		t.Error("two servers share a key")
	}
	if !bytes.Equal(testupstream.BuildProviderZip("x", []byte("bin")), testupstream.BuildProviderZip("x", []byte("bin"))) {
		t.Error("BuildProviderZip is not deterministic")
	}
}

func TestTamper(t *testing.T) {
	tests := []struct {
		kind    testupstream.TamperKind
		wantErr func(error) bool
	}{
		{testupstream.TamperNone, func(err error) bool { return err == nil }},
		{testupstream.TamperZip, func(err error) bool { return errors.Is(err, errZipChecksum) }},
		{testupstream.TamperShasum, func(err error) bool { return errors.Is(err, errSumsChecksum) }},
		{testupstream.TamperSignature, func(err error) bool {
			var se pgperrors.SignatureError
			return errors.As(err, &se)
		}},
		{testupstream.TamperUnknownKey, func(err error) bool { return errors.Is(err, pgperrors.ErrUnknownIssuer) }},
		{testupstream.TamperNoKeys, func(err error) bool { return errors.Is(err, errNoKeys) }},
	}
	for _, tc := range tests {
		t.Run(tc.kind.String(), func(t *testing.T) {
			s := testupstream.New(t)
			s.AddProvider("acme", "thing", "1.0.0", "linux_amd64", "darwin_arm64")
			s.Tamper("acme", "thing", "1.0.0", "linux_amd64", tc.kind)
			c := newClient(t, s)
			_, _, err := c.install(s.URL, "acme", "thing", "1.0.0", "linux", "amd64")
			if !tc.wantErr(err) {
				t.Fatalf("tampered with %s: err = %v (%T)", tc.kind, err, err)
			}
			if _, _, err := c.install(s.URL, "acme", "thing", "1.0.0", "darwin", "arm64"); err != nil {
				t.Fatalf("the other platform suffers too: %v", err)
			}
			s.Tamper("acme", "thing", "1.0.0", "linux_amd64", testupstream.TamperNone)
			if _, _, err := c.install(s.URL, "acme", "thing", "1.0.0", "linux", "amd64"); err != nil {
				t.Fatalf("after TamperNone: %v", err)
			}
		})
	}
}

func TestExpiredKey(t *testing.T) {
	s := testupstream.New(t, testupstream.WithExpiredKey())
	s.AddProvider("acme", "old", "0.1.0")
	c := newClient(t, s)
	_, _, err := c.install(s.URL, "acme", "old", "0.1.0", "linux", "amd64")
	if !errors.Is(err, pgperrors.ErrKeyExpired) {
		t.Fatalf("err = %v, want %v", err, pgperrors.ErrKeyExpired)
	}
}

func TestAddProviderZip(t *testing.T) {
	s := testupstream.New(t)
	s.AddProvider("acme", "real", "2.0.0", "linux_amd64")
	zipBytes := testupstream.BuildProviderZip("terraform-provider-real_v2.0.0", bytes.Repeat([]byte("compressible "), 1000))
	s.AddProviderZip("acme", "real", "2.0.0", "linux_arm64", zipBytes)
	c := newClient(t, s)
	got, _, err := c.install(s.URL, "acme", "real", "2.0.0", "linux", "arm64")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, zipBytes) {
		t.Fatal("served zip differs from the one added")
	}
	checkZipEntry(t, got, "terraform-provider-real_v2.0.0", 13000)
	// The synthetic package is still covered by the re-signed SHA256SUMS.
	if _, _, err := c.install(s.URL, "acme", "real", "2.0.0", "linux", "amd64"); err != nil {
		t.Fatal(err)
	}
}

func TestLargePackageStreams(t *testing.T) {
	const size = 8 << 20
	s := testupstream.New(t, testupstream.WithPackageSize(size))
	s.AddProvider("acme", "big", "1.0.0")
	got, _, err := newClient(t, s).install(s.URL, "acme", "big", "1.0.0", "linux", "amd64")
	if err != nil {
		t.Fatal(err)
	}
	checkZipEntry(t, got, "terraform-provider-big_v1.0.0", size)
}

func TestNotFound(t *testing.T) {
	s := testupstream.New(t)
	s.AddProvider("acme", "thing", "1.0.0", "linux_amd64")
	s.AddModule("acme", "vpc", "aws", "1.0.0", "git::https://example.invalid/vpc?ref=v1.0.0")
	c := newClient(t, s)
	for _, path := range []string{
		"/v1/providers/acme/nothing/versions",
		"/v1/providers/acme/thing/9.9.9/download/linux/amd64",
		"/v1/providers/acme/thing/1.0.0/download/plan9/amd64",
		"/files/acme/thing/1.0.0/terraform-provider-thing_1.0.0_plan9_amd64.zip",
		"/files/acme/thing/1.0.0/corrupt/terraform-provider-thing_1.0.0_SHA256SUMS",
		"/v1/modules/acme/vpc/gcp/versions",
		"/v1/modules/acme/vpc/aws/2.0.0/download",
		"/nowhere",
	} {
		t.Run(path, func(t *testing.T) {
			if _, status, body := c.get(s.URL + path); status != http.StatusNotFound {
				t.Errorf("status %d: %s", status, body)
			}
		})
	}
	s.SetDiscovery(nil)
	if _, status, _ := c.get(s.URL + "/.well-known/terraform.json"); status != http.StatusNotFound {
		t.Errorf("discovery after SetDiscovery(nil): status %d", status)
	}
	if got := s.Counts(); got.Other != 1 || got.Discovery != 1 || got.Total != 9 {
		t.Errorf("counts = %+v", got)
	}
}

func TestFailNext(t *testing.T) {
	s := testupstream.New(t)
	s.AddProvider("acme", "thing", "1.0.0")
	s.FailNext("/v1/providers/acme/", 2, http.StatusTooManyRequests, "3")
	s.FailNext("/files/", 1, http.StatusBadGateway, "")
	c := newClient(t, s)
	versionsURL := s.URL + "/v1/providers/acme/thing/versions"
	for i, want := range []int{429, 429, 200} {
		resp, err := c.hc.Get(versionsURL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("request %d: status %d, want %d", i, resp.StatusCode, want)
		}
		if ra := resp.Header.Get("Retry-After"); (want == 429) != (ra == "3") {
			t.Errorf("request %d: Retry-After %q", i, ra)
		}
	}
	if _, status, _ := c.get(s.URL + "/files/x"); status != http.StatusBadGateway {
		t.Errorf("files fault: status %d", status)
	}
	if _, _, err := c.install(s.URL, "acme", "thing", "1.0.0", "linux", "amd64"); err != nil {
		t.Fatalf("after faults are used up: %v", err)
	}
	if got := s.Counts().Versions; got != 3 {
		t.Errorf("Versions = %d, want 3 (failed requests count)", got)
	}
}

func TestToken(t *testing.T) {
	s := testupstream.New(t, testupstream.WithToken("sekrit"))
	s.AddProvider("acme", "thing", "1.0.0")
	hc := s.Client()
	if _, status, _ := (client{t: t, hc: hc}).get(s.URL + "/.well-known/terraform.json"); status != http.StatusUnauthorized {
		t.Fatalf("discovery without token: status %d", status)
	}
	base := hc.Transport
	hc.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.URL.Path == "/.well-known/terraform.json" || strings.HasPrefix(r.URL.Path, "/v1/") {
			r = r.Clone(r.Context())
			r.Header.Set("Authorization", "Bearer sekrit")
		}
		return base.RoundTrip(r)
	})
	s.ResetCounts()
	if _, _, err := (client{t: t, hc: hc}).install(s.URL, "acme", "thing", "1.0.0", "linux", "amd64"); err != nil {
		t.Fatal(err)
	}
	for _, r := range s.Requests() {
		wantAuth := !strings.HasPrefix(r.Path, "/files/")
		if (r.Authorization == "Bearer sekrit") != wantAuth {
			t.Errorf("%s %s: Authorization %q", r.Method, r.Path, r.Authorization)
		}
	}
	if n := len(s.Requests()); n != 5 {
		t.Errorf("recorded %d requests, want 5", n)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestModules(t *testing.T) {
	s := testupstream.New(t, testupstream.WithModuleDownloadStyle(testupstream.ModuleDownloadHeader))
	archive := []byte("PK fake module zip")
	s.ServeArchive("/archives/vpc-1.0.0.zip", archive)
	s.AddModule("acme", "vpc", "aws", "1.0.0", "/archives/vpc-1.0.0.zip")
	s.AddModule("acme", "vpc", "aws", "v1.1.0", "git::https://example.invalid/vpc?ref=0123abcd")
	s.AddModule("acme", "db", "aws", "2.0.0", "./db.zip")
	s.SetModuleDownloadStyle("acme", "db", "aws", testupstream.ModuleDownloadJSON)
	c := newClient(t, s)

	var disco map[string]string
	final := c.getJSON(s.URL+"/.well-known/terraform.json", &disco)
	modules, _ := url.Parse(resolve(t, final, disco["modules.v1"]))

	var versions struct {
		Modules []struct {
			Versions []struct{ Version string }
		}
	}
	c.getJSON(resolve(t, modules, "acme/vpc/aws/versions"), &versions)
	if len(versions.Modules) != 1 || len(versions.Modules[0].Versions) != 2 {
		t.Fatalf("versions = %+v", versions)
	}

	// Header style, location relative to the download URL.
	dlURL := resolve(t, modules, "acme/vpc/aws/1.0.0/download")
	resp, err := c.hc.Get(dlURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("X-Terraform-Get")
	if resp.StatusCode != http.StatusNoContent || loc != "/archives/vpc-1.0.0.zip" {
		t.Fatalf("header style: status %d, X-Terraform-Get %q", resp.StatusCode, loc)
	}
	archiveURL := resolve(t, resp.Request.URL, loc)
	if _, status, body := c.get(archiveURL + "?archive=zip"); status != http.StatusOK || !bytes.Equal(body, archive) {
		t.Fatalf("archive: status %d, %q", status, body)
	}

	// JSON style for one module.
	var loc2 struct{ Location string }
	c.getJSON(resolve(t, modules, "acme/db/aws/2.0.0/download"), &loc2)
	if loc2.Location != "./db.zip" {
		t.Fatalf("location = %q", loc2.Location)
	}

	want := testupstream.UpstreamCounts{Discovery: 1, ModuleVersions: 1, ModuleDownload: 2, Archive: 1, Total: 5}
	if got := s.Counts(); got != want {
		t.Errorf("counts = %+v, want %+v", got, want)
	}
}

func TestServicesOverride(t *testing.T) {
	s := testupstream.New(t)
	s.AddProvider("acme", "thing", "1.0.0")
	providers, _ := url.Parse(s.Services()["providers.v1"])
	var versions struct{ Versions []struct{ Version string } }
	newClient(t, s).getJSON(resolve(t, providers, "acme/thing/versions"), &versions)
	if len(versions.Versions) != 1 {
		t.Fatalf("versions = %+v", versions)
	}
	if s.Counts().Discovery != 0 {
		t.Error("the override should need no discovery")
	}
}

// h2Client asks for HTTP/2 by ALPN, as http.DefaultTransport does.
func h2Client(s *testupstream.Server) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: s.TLSConfig(), ForceAttemptHTTP2: true}}
}

func TestHTTP2(t *testing.T) {
	proto := func(t *testing.T, hc *http.Client, u string) string {
		t.Helper()
		resp, err := hc.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			t.Fatal(err)
		}
		return resp.Proto
	}
	s := testupstream.New(t)
	disco := s.URL + "/.well-known/terraform.json"
	if got := proto(t, h2Client(s), disco); got != "HTTP/2.0" {
		t.Errorf("a client offering h2 got %s, want HTTP/2.0", got)
	}
	if got := proto(t, s.Client(), disco); got != "HTTP/1.1" {
		t.Errorf("a client offering only HTTP/1.1 got %s", got)
	}
	old := testupstream.New(t, testupstream.WithoutHTTP2())
	if got := proto(t, h2Client(old), old.URL+"/.well-known/terraform.json"); got != "HTTP/1.1" {
		t.Errorf("WithoutHTTP2: a client offering h2 got %s, want HTTP/1.1", got)
	}
}

// forward relays TCP connections on a new 127.0.0.1 port to target, and
// counts the connections it accepted.
func forward(t *testing.T, target string) (addr string, accepted func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	n := 0
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			n++
			mu.Unlock()
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			go func() { _, _ = io.Copy(s, c); s.Close() }()
			go func() { _, _ = io.Copy(c, s); c.Close() }()
		}
	}()
	return ln.Addr().String(), func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// AdvertiseURL keeps a client that follows the server's URLs behind a
// proxy: nothing it fetches goes to the server's own address.
func TestAdvertiseURL(t *testing.T) {
	s := testupstream.New(t)
	s.AddProvider("acme", "thing", "1.0.0", "linux_amd64")
	addr, accepted := forward(t, s.Host)
	base := "https://" + addr
	s.AdvertiseURL(base + "/")
	if got := s.AdvertisedURL(); got != base {
		t.Errorf("AdvertisedURL = %q, want %q", got, base)
	}
	if got := s.Services()["providers.v1"]; got != base+"/v1/providers/" {
		t.Errorf("providers.v1 = %q, want it under %s", got, base)
	}
	// The certificate names 127.0.0.1, so any port verifies. One
	// connection at a time: every request must have gone through forward.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: s.TLSConfig(), MaxConnsPerHost: 1}}
	c := client{t: t, hc: hc}
	zipBytes, dl, err := c.install(base, "acme", "thing", "1.0.0", "linux", "amd64")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(dl.ShasumsSignatureURL, base+"/") {
		t.Errorf("shasums_signature_url %q is not under %s", dl.ShasumsSignatureURL, base)
	}
	if !bytes.Equal(zipBytes, s.Zip("acme", "thing", "1.0.0", "linux_amd64")) {
		t.Error("the zip fetched through the proxy differs")
	}
	if got := s.Counts().Total; got != 5 || accepted() < 1 {
		t.Errorf("%d requests over %d proxied connections, want 5 over at least 1", got, accepted())
	}
	hc.CloseIdleConnections()
	s.AdvertiseURL("")
	if got := s.Services()["providers.v1"]; got != s.URL+"/v1/providers/" {
		t.Errorf("after AdvertiseURL(\"\"): providers.v1 = %q, want it under %s", got, s.URL)
	}
}
