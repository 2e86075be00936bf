package modsource_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/modsource"
)

func TestParse(t *testing.T) {
	const sha = "25322b6b6be69db6cca7f167d7b0e5327156a595"
	for _, tc := range []struct {
		in   string
		want modsource.Source
	}{
		{"git::https://github.com/terraform-aws-modules/terraform-aws-vpc?ref=" + sha,
			modsource.Source{Kind: modsource.KindGit, URL: "https://github.com/terraform-aws-modules/terraform-aws-vpc", Ref: sha}},
		{"git::https://example.com/repo.git//modules/x?ref=v1.2.0",
			modsource.Source{Kind: modsource.KindGit, URL: "https://example.com/repo.git", Ref: "v1.2.0", Subdir: "modules/x"}},
		{"git::https://example.com/repo.git//modules/x/?ref=v1&depth=1",
			modsource.Source{Kind: modsource.KindGit, URL: "https://example.com/repo.git", Ref: "v1", Subdir: "modules/x"}},
		{"git::https://example.com/repo.git?ref=main&other=1",
			modsource.Source{Kind: modsource.KindGit, URL: "https://example.com/repo.git?other=1", Ref: "main"}},
		{"GIT::ssh://git@example.com/org/repo.git?ref=v1",
			modsource.Source{Kind: modsource.KindGit, URL: "ssh://git@example.com/org/repo.git", Ref: "v1"}},
		{"git::git@example.com:org/repo.git//sub?ref=v1",
			modsource.Source{Kind: modsource.KindGit, URL: "git@example.com:org/repo.git", Ref: "v1", Subdir: "sub"}},
		{"git@github.com:org/repo.git",
			modsource.Source{Kind: modsource.KindGit, URL: "git@github.com:org/repo.git"}},
		{"github.com/hashicorp/example",
			modsource.Source{Kind: modsource.KindGit, URL: "https://github.com/hashicorp/example.git"}},
		{"github.com/hashicorp/example.git?ref=v1.0.0",
			modsource.Source{Kind: modsource.KindGit, URL: "https://github.com/hashicorp/example.git", Ref: "v1.0.0"}},
		{"github.com/hashicorp/example/modules/a//b?ref=v1",
			modsource.Source{Kind: modsource.KindGit, URL: "https://github.com/hashicorp/example.git", Ref: "v1", Subdir: "modules/a/b"}},
		{"https://example.com/pkg.zip",
			modsource.Source{Kind: modsource.KindArchive, URL: "https://example.com/pkg.zip", Format: modsource.FormatZip}},
		{"https://example.com/pkg.tgz//inner",
			modsource.Source{Kind: modsource.KindArchive, URL: "https://example.com/pkg.tgz", Format: modsource.FormatTarGz, Subdir: "inner"}},
		// go-getter compares suffixes case-sensitively: no decompressor.
		{"https://example.com/pkg.TGZ",
			modsource.Source{Kind: modsource.KindHTTP, URL: "https://example.com/pkg.TGZ"}},
		{"https://example.com/pkg.tar.xz", modsource.Source{Kind: modsource.KindArchive, URL: "https://example.com/pkg.tar.xz", Format: modsource.FormatTarXz}},
		{"https://example.com/pkg.txz", modsource.Source{Kind: modsource.KindArchive, URL: "https://example.com/pkg.txz", Format: modsource.FormatTarXz}},
		{"https://example.com/pkg.tar.bz2", modsource.Source{Kind: modsource.KindArchive, URL: "https://example.com/pkg.tar.bz2", Format: modsource.FormatTarBz2}},
		{"https://example.com/pkg.tar.tbz2", modsource.Source{Kind: modsource.KindArchive, URL: "https://example.com/pkg.tar.tbz2", Format: modsource.FormatTarBz2}},
		// Not decompressor keys: asked for X-Terraform-Get, as OpenTofu does.
		{"https://example.com/pkg.tbz2", modsource.Source{Kind: modsource.KindHTTP, URL: "https://example.com/pkg.tbz2"}},
		{"https://example.com/pkg.tar", modsource.Source{Kind: modsource.KindHTTP, URL: "https://example.com/pkg.tar"}},
		{"https://example.com/dl?archive=tar.xz", modsource.Source{Kind: modsource.KindArchive, URL: "https://example.com/dl", Format: modsource.FormatTarXz}},
		{"https://example.com/pkg.zip?archive=false", modsource.Source{Kind: modsource.KindHTTP, URL: "https://example.com/pkg.zip"}},
		{"https://example.com/pkg?archive=rar&x=1", modsource.Source{Kind: modsource.KindHTTP, URL: "https://example.com/pkg?x=1"}},
		{"https://example.com/pkg?x=1&checksum=sha256:" + strings.Repeat("ab", 32), modsource.Source{Kind: modsource.KindHTTP, URL: "https://example.com/pkg?x=1"}},
		{"git::github.com/hashicorp/example//sub?ref=v2",
			modsource.Source{Kind: modsource.KindGit, URL: "https://github.com/hashicorp/example.git", Ref: "v2", Subdir: "sub"}},
		{"direct::https://registry.example.com/pkg/x?sig=1",
			modsource.Source{Kind: modsource.KindDirect, URL: "https://registry.example.com/pkg/x?sig=1"}},
		{modsource.DirectSource("https://registry.example.com/pkg/x", "registry.example.com"),
			modsource.Source{Kind: modsource.KindDirect, URL: "https://registry.example.com/pkg/x", CredentialsHost: "registry.example.com"}},
		{"http://127.0.0.1:8080/a/pkg.tar.gz?token=x%2Fy",
			modsource.Source{Kind: modsource.KindArchive, URL: "http://127.0.0.1:8080/a/pkg.tar.gz?token=x%2Fy", Format: modsource.FormatTarGz}},
		{"https://example.com/download?archive=tgz&v=1",
			modsource.Source{Kind: modsource.KindArchive, URL: "https://example.com/download?v=1", Format: modsource.FormatTarGz}},
		{"https::https://example.com/pkg.tar.gz?checksum=sha256:" + strings.Repeat("ab", 32),
			modsource.Source{Kind: modsource.KindArchive, URL: "https://example.com/pkg.tar.gz", Format: modsource.FormatTarGz, Checksum: "sha256:" + strings.Repeat("ab", 32)}},
		{"https://codeload.github.com/org/repo/legacy.tar.gz/v1//*",
			modsource.Source{Kind: modsource.KindHTTP, URL: "https://codeload.github.com/org/repo/legacy.tar.gz/v1", Subdir: "*"}},
		{"https://example.com/no-extension",
			modsource.Source{Kind: modsource.KindHTTP, URL: "https://example.com/no-extension"}},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := modsource.Parse(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got  %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want error
	}{
		{"s3::https://s3.amazonaws.com/bucket/mod.zip", modsource.ErrUnsupportedSource},
		{"gcs::https://www.googleapis.com/storage/v1/bucket/mod.zip", modsource.ErrUnsupportedSource},
		{"hg::https://example.com/repo", modsource.ErrUnsupportedSource},
		{"file::/tmp/mod", modsource.ErrUnsupportedSource},
		{"weird::https://example.com", modsource.ErrUnsupportedSource},
		{"bucket.s3.amazonaws.com/mod.zip", modsource.ErrUnsupportedSource},
		{"www.googleapis.com/storage/v1/bucket/mod.zip", modsource.ErrUnsupportedSource},
		{"bitbucket.org/org/repo", modsource.ErrUnsupportedSource},
		{"./local", modsource.ErrUnsupportedSource},
		{"/abs/path", modsource.ErrUnsupportedSource},
		{"terraform-aws-modules/vpc/aws", modsource.ErrUnsupportedSource},
		{"", modsource.ErrUnsupportedSource},
		{"git::file:///srv/repo.git", modsource.ErrUnsupportedSource},
		{"git::ext::sh -c touch% /tmp/pwned", modsource.ErrUnsupportedSource},
		{"git::https://example.com/repo.git?sshkey=abc", modsource.ErrUnsupportedSource},
		{"git::https://example.com/repo.git?ref=--upload-pack=evil", modsource.ErrUnsupportedSource},
		{"github.com/onlyorg", modsource.ErrUnsupportedSource},
		{"https://example.com/pkg.gz", modsource.ErrUnsupportedSource},
		{"https://example.com/pkg.tar.bz2?archive=xz", modsource.ErrUnsupportedSource},
		{"https://example.com/pkg?checksum=sha256:zz", modsource.ErrUnsupportedSource},
		{"git::https://example.com/repo.git?ref=v1//sub", modsource.ErrUnsupportedSource},
		{"direct::ftp://example.com/x", modsource.ErrUnsupportedSource},
		{"direct::https://example.com/x#frag", modsource.ErrUnsupportedSource},
		{"https://example.com/pkg.zip?checksum=sha256:zz", modsource.ErrUnsupportedSource},
		{"ftp://example.com/pkg.zip", modsource.ErrUnsupportedSource},
		{"git::https://example.com/repo.git//../../etc?ref=v1", manifest.ErrUnsafePath},
		{"https://example.com/pkg.zip//a/../../b", manifest.ErrUnsafePath},
	} {
		t.Run(tc.in, func(t *testing.T) {
			_, err := modsource.Parse(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if tc.want == modsource.ErrUnsupportedSource && !strings.Contains(err.Error(), "unsupported source type") {
				t.Fatalf("message %q does not say what is wrong", err)
			}
		})
	}
}

func TestSourceStringRedacts(t *testing.T) {
	s, err := modsource.Parse("git::https://user:hunter2@example.com/repo.git//sub?ref=v1")
	if err != nil {
		t.Fatal(err)
	}
	got := s.String()
	if strings.Contains(got, "hunter2") || got != "git::https://user:xxxxx@example.com/repo.git//sub?ref=v1" {
		t.Fatalf("String() = %q", got)
	}
	if _, err := modsource.Parse("s3::https://user:hunter2@example.com/x"); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error leaks the password: %v", err)
	}
}
