package lockfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/target"
)

const testAddress = "registry.opentofu.org/acme/echo"

// pushRelease pushes version of acme/echo into repo as another tool would
// (no provenance), one synthetic zip per platform, and returns the zips.
func pushRelease(t *testing.T, tg *target.Target, repo, version string, platforms ...string) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	if err := tg.PutBlob(ctx, repo, manifest.EmptyConfig(), bytes.NewReader([]byte("{}"))); err != nil {
		t.Fatal(err)
	}
	zips := map[string][]byte{}
	var entries []manifest.PlatformManifest
	for _, p := range platforms {
		name := fmt.Sprintf("terraform-provider-echo_%s_%s.zip", version, p)
		z := buildZip(t, entry{name: "terraform-provider-echo_v" + version, body: "binary for " + p})
		zips[p] = z
		layer, err := manifest.BlobDescriptor(manifest.ZipLayerMediaType, digest.SHA256.FromBytes(z).Encoded(), int64(len(z)))
		if err != nil {
			t.Fatal(err)
		}
		if err := tg.PutBlob(ctx, repo, layer, bytes.NewReader(z)); err != nil {
			t.Fatal(err)
		}
		pm, err := manifest.ProviderTarget(layer, name)
		if err != nil {
			t.Fatal(err)
		}
		if err := tg.PutManifest(ctx, repo, pm, ""); err != nil {
			t.Fatal(err)
		}
		goos, goarch, _ := strings.Cut(p, "_")
		entries = append(entries, manifest.PlatformManifest{OS: goos, Arch: goarch, Manifest: pm.Descriptor})
	}
	idx, err := manifest.ProviderIndex(entries)
	if err != nil {
		t.Fatal(err)
	}
	if err := tg.PutManifest(ctx, repo, idx, manifest.Tag(version)); err != nil {
		t.Fatal(err)
	}
	return zips
}

// TestUpdate against the in-process registry: the newest allowed version,
// every held platform hashed (concurrently: run with -race), zh: for the
// held zips only and a warning when no provenance is stored, and a named
// error for a platform the mirror lacks.
func TestUpdate(t *testing.T) {
	reg := testregistry.New(t)
	cfg, err := config.Parse("mirror.yaml", []byte(fmt.Sprintf("version: 1\ntarget:\n  registry: %q\n  insecure: true\n", reg.Host)))
	if err != nil {
		t.Fatal(err)
	}
	tg, err := target.Open(cfg.Target)
	if err != nil {
		t.Fatal(err)
	}
	const repo = "opentofu-providers/acme/echo"
	platforms := []string{"darwin_arm64", "linux_amd64", "linux_arm64", "windows_amd64", "freebsd_amd64"}
	pushRelease(t, tg, repo, "1.0.0", platforms...)
	zips := pushRelease(t, tg, repo, "1.1.0", platforms...)
	pushRelease(t, tg, repo, "2.0.0", platforms...)

	cons, err := ParseConstraints("~> 1.0")
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Repository: func(string) (string, error) { return repo, nil }, SpoolDir: t.TempDir(), Concurrency: 3}
	res, err := Update(context.Background(), tg, nil, map[string]Constraints{testAddress: cons}, opts)
	if err != nil {
		t.Fatal(err)
	}
	p := res.File.Providers[testAddress]
	if p == nil || p.Version.String() != "1.1.0" {
		t.Fatalf("locked %+v, want 1.1.0", p)
	}
	var want []string
	for _, pl := range platforms {
		h, err := HashPackage(bytes.NewReader(zips[pl]), t.TempDir(), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, h.H1, h.ZH)
	}
	slices.Sort(want)
	if !slices.Equal(p.Hashes, want) {
		t.Fatalf("hashes %v, want %v", p.Hashes, want)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "not signed") {
		t.Fatalf("warnings %v, want one about unsigned zh: hashes", res.Warnings)
	}

	opts.Platforms = []string{"linux_amd64", "solaris_amd64"}
	_, err = Update(context.Background(), tg, nil, map[string]Constraints{testAddress: cons}, opts)
	if !errors.Is(err, ErrMissingPlatform) || !strings.Contains(err.Error(), "solaris_amd64") {
		t.Fatalf("err = %v, want ErrMissingPlatform naming solaris_amd64", err)
	}
}
