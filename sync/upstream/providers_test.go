package upstream

import (
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
)

func TestProviderVersions(t *testing.T) {
	f := newProviderFixture(t, nil)
	c := f.client(t)
	got, err := c.ProviderVersions(t.Context(), f.addr())
	if err != nil {
		t.Fatal(err)
	}
	want := &ProviderVersions{
		Versions: []ProviderVersion{
			{Version: "3.2.1", Protocols: []string{"5.0"}, Platforms: []config.Platform{{OS: "linux", Arch: "amd64"}, {OS: "darwin", Arch: "arm64"}}, PlatformsListed: true},
			{Version: "3.2.0", Protocols: []string{"5.0"}},
		},
		Warnings: []string{"this provider is deprecated"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ProviderVersions =\n%+v\nwant\n%+v", got, want)
	}
	for _, s := range f.rec.all() {
		if s.Auth != "Bearer "+testToken {
			t.Errorf("%s: Authorization %q, want the token", s.Path, s.Auth)
		}
	}

	unknown := f.addr()
	unknown.Type = "nonesuch"
	_, err = c.ProviderVersions(t.Context(), unknown)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown provider: error %v, want ErrNotFound", err)
	}
	if !strings.Contains(err.Error(), hostOf(f.api)+"/hashicorp/nonesuch") {
		t.Errorf("error %q does not name the provider", err)
	}
}

// TestProviderVersionsAsOpenTofuReadsThem: versions whose plugin protocols
// OpenTofu refuses (registry_client.go SupportedPluginProtocols, >= 5 < 7)
// are skipped with a warning; a version without a platforms list says so,
// because OpenTofu asks the download endpoint per platform instead.
func TestProviderVersionsAsOpenTofuReadsThem(t *testing.T) {
	f := newProviderFixture(t, func(f *providerFixture) {
		f.versions = []any{
			map[string]any{"version": "7.0.0", "protocols": []string{"7.0"}},
			map[string]any{"version": "6.1.0", "protocols": []string{"4.0", "6.0"}},
			map[string]any{"version": "6.0.0", "protocols": []string{"6.0"}},
			map[string]any{"version": "5.0.0", "protocols": []string{"5.2"}, "platforms": []any{}},
			map[string]any{"version": "4.0.0", "protocols": []string{"4.0"}, "platforms": []any{map[string]string{"os": "linux", "arch": "amd64"}}},
			map[string]any{"version": "3.0.0"},
			map[string]any{"version": "2.0.0", "protocols": []string{"five"}},
		}
	})
	got, err := f.client(t).ProviderVersions(t.Context(), f.addr())
	if err != nil {
		t.Fatal(err)
	}
	want := []ProviderVersion{
		{Version: "6.1.0", Protocols: []string{"4.0", "6.0"}},
		{Version: "6.0.0", Protocols: []string{"6.0"}},
		{Version: "5.0.0", Protocols: []string{"5.2"}},
		{Version: "3.0.0"},
	}
	if !reflect.DeepEqual(got.Versions, want) {
		t.Errorf("versions =\n%+v\nwant\n%+v", got.Versions, want)
	}
	wantWarnings := []string{
		"version 7.0.0 skipped: plugin protocols 7.0 are outside 5.x and 6.x, which OpenTofu refuses to install",
		"version 4.0.0 skipped: plugin protocols 4.0 are outside 5.x and 6.x, which OpenTofu refuses to install",
		`version 2.0.0 skipped: plugin protocol "five" is not a version`,
	}
	if !reflect.DeepEqual(got.Warnings, wantWarnings) {
		t.Errorf("warnings =\n%q\nwant\n%q", got.Warnings, wantWarnings)
	}
}

func TestProviderVersionsMalformed(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		status  int
		wantErr error
	}{
		{"truncated JSON", `{"versions":[`, 200, ErrProtocol},
		{"version missing", `{"versions":[{"protocols":["5.0"]}]}`, 200, ErrProtocol},
		{"server error after retries", `oops`, 500, ErrHTTPStatus},
		{"forbidden", `no`, 403, ErrUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mux := http.NewServeMux()
			mux.HandleFunc("GET /v1/providers/ns/t/versions", func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			})
			srv := newTLSServer(t, mux)
			c := testClient(t, srv, "", WithHostServices(map[string]map[string]string{"reg.example": {ProvidersService: srv.URL + "/v1/providers/"}}))
			_, err := c.ProviderVersions(t.Context(), config.ProviderAddr{Hostname: "reg.example", Namespace: "ns", Type: "t"})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestProviderDownload(t *testing.T) {
	f := newProviderFixture(t, nil)
	c := f.client(t)
	got := f.pkg(t, c)
	want := &ProviderPackage{
		Provider:            f.addr(),
		Version:             "3.2.1",
		Platform:            config.Platform{OS: "linux", Arch: "amd64"},
		Protocols:           []string{"5.0"},
		Filename:            f.rel.filename,
		DownloadURL:         f.files.URL + "/files/" + f.rel.filename,
		SHASumsURL:          f.files.URL + "/files/terraform-provider-null_3.2.1_SHA256SUMS",
		SHASumsSignatureURL: f.files.URL + "/files/terraform-provider-null_3.2.1_SHA256SUMS.sig",
		SHA256:              sha256hex(f.rel.zip),
		Size:                int64(len(f.rel.zip)),
		Hashes:              []string{"zh:" + sha256hex(f.rel.zip), "h1:notcheckedhere="},
		SigningKeys:         f.keys,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ProviderDownload =\n%+v\nwant\n%+v", got, want)
	}

	_, err := c.ProviderDownload(t.Context(), f.addr(), "3.2.1", config.Platform{OS: "plan9", Arch: "mips"})
	if !errors.Is(err, ErrPlatformNotOffered) {
		t.Fatalf("missing platform: error %v, want ErrPlatformNotOffered", err)
	}
	for _, s := range []string{hostOf(f.api) + "/hashicorp/null", "3.2.1", "plan9_mips"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %q", err, s)
		}
	}
}

func TestProviderDownloadNoPackagesField(t *testing.T) {
	f := newProviderFixture(t, func(f *providerFixture) { f.packages = nil })
	p := f.pkg(t, f.client(t))
	if p.Size != -1 || p.Hashes != nil {
		t.Errorf("Size = %d, Hashes = %v; want -1 and nil without packages", p.Size, p.Hashes)
	}
}

// The download answer sits behind a redirect; its relative URLs resolve
// against where it was finally served from. The token never follows the
// redirect to the other host.
func TestProviderDownloadRelativeURLsAfterRedirect(t *testing.T) {
	other := &recorder{}
	otherMux := http.NewServeMux()
	otherMux.HandleFunc("GET /mirror/null/answer.json", func(w http.ResponseWriter, r *http.Request) {
		serveJSON(w, map[string]any{
			"os": "linux", "arch": "amd64",
			"filename":              "p.zip",
			"download_url":          "files/p.zip",
			"shasums_url":           "../sums/SHA256SUMS",
			"shasums_signature_url": "/abs/SHA256SUMS.sig",
			"shasum":                strings.Repeat("AB", 32),
		})
	})
	otherSrv := newTLSServer(t, other.wrap(otherMux))

	rec := &recorder{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/terraform.json", func(w http.ResponseWriter, r *http.Request) {
		serveJSON(w, map[string]string{"providers.v1": "/v1/providers/"})
	})
	mux.HandleFunc("GET /v1/providers/ns/t/1.0.0/download/linux/amd64", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, otherSrv.URL+"/mirror/null/answer.json", http.StatusFound)
	})
	srv := newTLSServer(t, rec.wrap(mux))
	c := testClient(t, srv, hostOf(srv))
	p, err := c.ProviderDownload(t.Context(), config.ProviderAddr{Hostname: hostOf(srv), Namespace: "ns", Type: "t"}, "1.0.0", config.Platform{OS: "linux", Arch: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	for got, want := range map[string]string{
		p.DownloadURL:         otherSrv.URL + "/mirror/null/files/p.zip",
		p.SHASumsURL:          otherSrv.URL + "/mirror/sums/SHA256SUMS",
		p.SHASumsSignatureURL: otherSrv.URL + "/abs/SHA256SUMS.sig",
		p.SHA256:              strings.Repeat("ab", 32),
	} {
		if got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
	for _, s := range rec.all() {
		if s.Auth != "Bearer "+testToken {
			t.Errorf("registry request %s lacks the token", s.Path)
		}
	}
	for _, s := range other.all() {
		if s.Auth != "" {
			t.Errorf("token followed the redirect to %s%s", s.Host, s.Path)
		}
	}
	if len(other.all()) != 1 {
		t.Errorf("other host saw %d requests, want 1", len(other.all()))
	}
}

func TestProviderDownloadMalformed(t *testing.T) {
	good := func() map[string]any {
		return map[string]any{
			"os": "linux", "arch": "amd64", "filename": "p.zip",
			"download_url": "https://example.com/p.zip", "shasums_url": "https://example.com/S", "shasums_signature_url": "https://example.com/S.sig",
			"shasum": strings.Repeat("0", 64),
		}
	}
	tests := []struct {
		name   string
		change func(m map[string]any)
	}{
		{"os not echoed", func(m map[string]any) { m["os"] = "darwin" }},
		{"arch not echoed", func(m map[string]any) { m["arch"] = "arm64" }},
		{"non-http download URL", func(m map[string]any) { m["download_url"] = "file:///etc/passwd" }},
		{"non-http shasums URL", func(m map[string]any) { m["shasums_url"] = "ftp://example.com/S" }},
		{"empty signature URL", func(m map[string]any) { m["shasums_signature_url"] = "" }},
		{"short shasum", func(m map[string]any) { m["shasum"] = "abcd" }},
		{"non-hex shasum", func(m map[string]any) { m["shasum"] = strings.Repeat("z", 64) }},
		{"filename with a path", func(m map[string]any) { m["filename"] = "../p.zip" }},
		{"negative package size", func(m map[string]any) {
			m["packages"] = map[string]any{"linux_amd64": map[string]any{"package_size": -5}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mux := http.NewServeMux()
			mux.HandleFunc("GET /p/ns/t/1.0.0/download/linux/amd64", func(w http.ResponseWriter, r *http.Request) {
				m := good()
				tt.change(m)
				serveJSON(w, m)
			})
			srv := newTLSServer(t, mux)
			c := testClient(t, srv, "", WithHostServices(map[string]map[string]string{"reg.example": {ProvidersService: srv.URL + "/p"}}))
			addr := config.ProviderAddr{Hostname: "reg.example", Namespace: "ns", Type: "t"}
			_, err := c.ProviderDownload(t.Context(), addr, "1.0.0", config.Platform{OS: "linux", Arch: "amd64"})
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v, want ErrProtocol", err)
			}
		})
	}
}

func TestJSONSizeCap(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /p/ns/t/versions", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"versions":[],"warnings":["`))
		chunk := []byte(strings.Repeat("x", 1<<20))
		for range MaxJSONSize>>20 + 1 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		_, _ = w.Write([]byte(`"]}`))
	})
	srv := newTLSServer(t, mux)
	c := testClient(t, srv, "", WithHostServices(map[string]map[string]string{"reg.example": {ProvidersService: srv.URL + "/p/"}}))
	_, err := c.ProviderVersions(t.Context(), config.ProviderAddr{Hostname: "reg.example", Namespace: "ns", Type: "t"})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("error %v, want ErrTooLarge", err)
	}
}
