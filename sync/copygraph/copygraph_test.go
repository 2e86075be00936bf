package copygraph_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient/types/descriptor"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/copygraph"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/sched"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/target"
)

func open(t *testing.T) (*testregistry.Registry, *target.Target) {
	t.Helper()
	reg := testregistry.New(t)
	tg, err := target.Open(config.Target{Registry: reg.Host, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	return reg, tg
}

// A version pushed through the copy-graph from many goroutines at once:
// each blob is uploaded once, manifests land after their children, the
// tag last, and a second run uploads nothing ("exists" is success).
func TestCopyGraphChildrenFirstOncePerDigest(t *testing.T) {
	reg, tg := open(t)
	const repo = "opentofu-providers/acme/widget"
	zip := []byte(strings.Repeat("zip bytes ", 1000))
	zd := descriptor.Descriptor{MediaType: manifest.ZipLayerMediaType, Digest: digest.SHA256.FromBytes(zip), Size: int64(len(zip))}
	platform, err := manifest.ProviderTarget(zd, "terraform-provider-widget_1.0.0_linux_amd64.zip")
	if err != nil {
		t.Fatal(err)
	}
	index, err := manifest.ProviderIndex([]manifest.PlatformManifest{{OS: "linux", Arch: "amd64", Manifest: platform.Descriptor}})
	if err != nil {
		t.Fatal(err)
	}
	run := func() {
		c := copygraph.New(tg, sched.NewLimit(2))
		ctx := context.Background()
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.GoBlob(ctx, repo, manifest.EmptyConfig(), copygraph.Bytes(descriptor.EmptyData), false, nil)
				c.GoBlob(ctx, repo, zd, copygraph.Bytes(zip), false, nil)
				c.GoManifest(ctx, repo, platform, nil)
				c.GoManifest(ctx, repo, index, nil)
			}()
		}
		wg.Wait()
		c.Wait()
		if err := c.Tag(ctx, repo, index, "1.0.0"); err != nil {
			t.Fatal(err)
		}
	}
	run()
	if n := reg.Counts().BlobUploadStart; n != 2 {
		t.Fatalf("%d blob uploads, want 2 (config and zip, once each)", n)
	}
	raw, _, err := tg.Manifest(context.Background(), repo, "1.0.0")
	if err != nil || digest.SHA256.FromBytes(raw) != index.Descriptor.Digest {
		t.Fatalf("tag: %v", err)
	}
	reg.ResetCounts()
	run()
	if n := reg.Counts().BlobUploadStart; n != 0 {
		t.Fatalf("a second run uploaded %d blobs", n)
	}
}

// A manifest whose child failed is not pushed, and the failure is
// forgotten so the next call tries again.
func TestCopyGraphFailedChildStopsTheParent(t *testing.T) {
	_, tg := open(t)
	const repo = "opentofu-modules/acme/x/null"
	c := copygraph.New(tg, nil)
	ctx := context.Background()
	boom := errors.New("disk gone")
	data := []byte("module zip")
	zd := descriptor.Descriptor{MediaType: manifest.ZipLayerMediaType, Digest: digest.SHA256.FromBytes(data), Size: int64(len(data))}
	art, err := manifest.ModulePackage(zd)
	if err != nil {
		t.Fatal(err)
	}
	c.GoBlob(ctx, repo, zd, func() (io.Reader, error) { return nil, boom }, false, nil)
	var merr error
	c.GoManifest(ctx, repo, art, func(err error) { merr = err })
	c.Wait()
	if !errors.Is(merr, boom) {
		t.Fatalf("manifest pushed over a failed child: %v", merr)
	}
	if ok, _ := tg.ManifestExists(ctx, repo, art.Descriptor.Digest); ok {
		t.Fatal("the manifest reached the registry")
	}
	if _, err := c.Blob(ctx, repo, zd, copygraph.Bytes(data), false); err != nil {
		t.Fatalf("the retry after a failure: %v", err)
	}
}
