package modsource_test

import (
	"encoding/base64"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/modsource"
)

func TestNetrc(t *testing.T) {
	hw, up := newHTTPWorld(t)
	zipped := zipBytes(t, file("main.tf", "# pkg\n"))
	hw.routes["/p.zip"] = route{body: zipped}
	hw.routes["/lookup"] = route{status: 204, header: map[string]string{"X-Terraform-Get": "{base}/p.zip"}}
	host := strings.TrimPrefix(hw.srv.URL, "http://")
	dir := t.TempDir()
	netrc := filepath.Join(dir, ".netrc")
	content := "# credentials\nmachine other.example login nobody password nothing\n" +
		"macdef init\n  machine " + host + " login macro password macro\n\n" +
		"machine " + host + "\n  login alice\n  password s3cret # trailing comment\n" +
		"machine " + host + " login second password ignored\n" +
		"default login anon password anonpw\n"
	if err := os.WriteFile(netrc, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	basic := func(u, p string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p)) }
	f := modsource.New(modsource.WithHTTPFetcher(up), modsource.WithNetrc(netrc))
	for _, src := range []string{hw.srv.URL + "/p.zip", hw.srv.URL + "/lookup"} {
		if _, err := f.Fetch(t.Context(), src, filepath.Join(t.TempDir(), "pkg")); err != nil {
			t.Fatal(err)
		}
	}
	// A URL naming its own user keeps it.
	own, _ := url.Parse(hw.srv.URL + "/p.zip")
	own.User = url.UserPassword("bob", "pw")
	if _, err := f.Fetch(t.Context(), own.String(), filepath.Join(t.TempDir(), "pkg")); err != nil {
		t.Fatal(err)
	}
	// The default entry answers for other hosts: 127.0.0.1 vs localhost.
	other := strings.Replace(hw.srv.URL, "127.0.0.1", "localhost", 1)
	if _, err := f.Fetch(t.Context(), other+"/p.zip", filepath.Join(t.TempDir(), "pkg")); err != nil {
		t.Fatal(err)
	}
	// Without WithNetrc, or with a missing file, nothing is sent.
	for _, g := range []*modsource.Fetcher{modsource.New(modsource.WithHTTPFetcher(up)), modsource.New(modsource.WithHTTPFetcher(up), modsource.WithNetrc(filepath.Join(dir, "missing")))} {
		if _, err := g.Fetch(t.Context(), hw.srv.URL+"/p.zip", filepath.Join(t.TempDir(), "pkg")); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{
		"/p.zip? auth=" + basic("alice", "s3cret"),
		"/lookup?terraform-get=1 auth=" + basic("alice", "s3cret"),
		"/p.zip? auth=" + basic("alice", "s3cret"),
		"/p.zip? auth=" + basic("bob", "pw"),
		"/p.zip? auth=" + basic("anon", "anonpw"),
		"/p.zip? auth=",
		"/p.zip? auth=",
	}
	got := hw.requests()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("requests:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
