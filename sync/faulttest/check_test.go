package faulttest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/regclient/regclient/types/manifest"
	"github.com/regclient/regclient/types/ref"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/faulttest"
)

// TestCompleteProviderVersionsCatchesWhatOpenTofuWouldTripOn: the check
// the fault tests rely on must itself fail on a half-published version.
func TestCompleteProviderVersionsCatchesWhatOpenTofuWouldTripOn(t *testing.T) {
	s := newScene(t)
	reg := testregistry.New(t, testregistry.WithDelete())
	s.mustMirror(nil, "sync", "-c", s.plan(reg), "--no-progress")
	ctx := context.Background()
	rc := reg.Client()
	repo := "opentofu-providers/acme/widget"

	tags, err := faulttest.CompleteProviderVersions(ctx, rc, reg.Host, repo, platforms)
	if err != nil || strings.Join(tags, ",") != "1.0.0,1.1.0,1.2.0" {
		t.Fatalf("a complete mirror: tags %v, %v", tags, err)
	}
	if _, err := faulttest.CompleteProviderVersions(ctx, rc, reg.Host, repo, append([]string{"aix_ppc64"}, platforms...)); err == nil ||
		!strings.Contains(err.Error(), "visible with platforms") {
		t.Errorf("a version lacking a wanted platform passed: %v", err)
	}

	// A platform manifest tagged as a version is not what OpenTofu reads.
	r, _ := ref.New(reg.Host + "/" + repo)
	idx, err := rc.ManifestGet(ctx, r.SetTag("1.0.0"))
	if err != nil {
		t.Fatal(err)
	}
	children, err := idx.GetManifestList()
	if err != nil {
		t.Fatal(err)
	}
	child, err := rc.ManifestGet(ctx, r.SetDigest(children[0].Digest.String()))
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.ManifestPut(ctx, r.SetTag("1.3.0"), child); err != nil {
		t.Fatal(err)
	}
	if _, err := faulttest.CompleteProviderVersions(ctx, rc, reg.Host, repo, platforms); err == nil || !strings.Contains(err.Error(), "1.3.0: application/vnd.oci.image.manifest.v1+json") {
		t.Errorf("a plain manifest at a version tag passed: %v", err)
	}

	// A layer blob gone from under a tagged version.
	layers, err := child.(manifest.Imager).GetLayers()
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.BlobDelete(ctx, r, layers[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := faulttest.CompleteProviderVersions(ctx, rc, reg.Host, repo, platforms); err == nil || !strings.Contains(err.Error(), "blob "+layers[0].Digest.String()) {
		t.Errorf("a version whose package blob is gone passed: %v", err)
	}
}
