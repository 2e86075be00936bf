package testregistry_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient"
	"github.com/regclient/regclient/config"
	"github.com/regclient/regclient/scheme/reg"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/errs"
	"github.com/regclient/regclient/types/manifest"
	"github.com/regclient/regclient/types/mediatype"
	v1 "github.com/regclient/regclient/types/oci/v1"
	"github.com/regclient/regclient/types/platform"
	"github.com/regclient/regclient/types/ref"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
)

// artifact is what pushIndex put into a registry, for checking it back.
type artifact struct {
	layer     []byte
	layerDesc descriptor.Descriptor
	index     descriptor.Descriptor
}

func blobDesc(mediaType string, b []byte) descriptor.Descriptor {
	return descriptor.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
}

// pushIndex pushes a one-platform OCI index shaped like an OpenTofu provider
// release: an empty config, one archive/zip layer, a manifest, then the index
// by tag.
func pushIndex(ctx context.Context, t *testing.T, rc *regclient.RegClient, refStr string, layer []byte) artifact {
	t.Helper()
	r, err := ref.New(refStr)
	if err != nil {
		t.Fatalf("ref %s: %v", refStr, err)
	}
	emptyDesc := blobDesc(mediatype.OCI1Empty, descriptor.EmptyData)
	layerDesc := blobDesc("archive/zip", layer)
	for _, b := range []struct {
		d    descriptor.Descriptor
		data []byte
	}{{emptyDesc, descriptor.EmptyData}, {layerDesc, layer}} {
		if _, err := rc.BlobPut(ctx, r, b.d, bytes.NewReader(b.data)); err != nil {
			t.Fatalf("blob put %s: %v", b.d.Digest, err)
		}
	}
	m, err := manifest.New(manifest.WithOrig(v1.Manifest{
		Versioned:    v1.ManifestSchemaVersion,
		MediaType:    mediatype.OCI1Manifest,
		ArtifactType: "application/vnd.opentofu.provider-target",
		Config:       emptyDesc,
		Layers:       []descriptor.Descriptor{layerDesc},
	}))
	if err != nil {
		t.Fatalf("manifest: %v", err)
	}
	mDesc := m.GetDescriptor()
	if err := rc.ManifestPut(ctx, r.SetDigest(mDesc.Digest.String()), m, regclient.WithManifestChild()); err != nil {
		t.Fatalf("manifest put: %v", err)
	}
	mDesc.ArtifactType = "application/vnd.opentofu.provider-target"
	mDesc.Platform = &platform.Platform{OS: "linux", Architecture: "amd64"}
	idx, err := manifest.New(manifest.WithOrig(v1.Index{
		Versioned:    v1.IndexSchemaVersion,
		MediaType:    mediatype.OCI1ManifestList,
		ArtifactType: "application/vnd.opentofu.provider",
		Manifests:    []descriptor.Descriptor{mDesc},
	}))
	if err != nil {
		t.Fatalf("index: %v", err)
	}
	if err := rc.ManifestPut(ctx, r, idx); err != nil {
		t.Fatalf("index put: %v", err)
	}
	return artifact{layer: layer, layerDesc: layerDesc, index: idx.GetDescriptor()}
}

// checkIndex pulls the index by tag and the layer by digest and compares.
func checkIndex(ctx context.Context, t *testing.T, rc *regclient.RegClient, refStr string, want artifact) {
	t.Helper()
	r, err := ref.New(refStr)
	if err != nil {
		t.Fatalf("ref %s: %v", refStr, err)
	}
	m, err := rc.ManifestGet(ctx, r)
	if err != nil {
		t.Fatalf("manifest get %s: %v", refStr, err)
	}
	if got := m.GetDescriptor().Digest; got != want.index.Digest {
		t.Fatalf("index digest = %s, want %s", got, want.index.Digest)
	}
	br, err := rc.BlobGet(ctx, r, want.layerDesc)
	if err != nil {
		t.Fatalf("blob get: %v", err)
	}
	defer br.Close()
	got, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("reading blob: %v", err)
	}
	if !bytes.Equal(got, want.layer) {
		t.Fatalf("blob differs: got %d bytes, want %d", len(got), len(want.layer))
	}
}

func TestPushPull(t *testing.T) {
	tests := []struct {
		name string
		opts []testregistry.Option
		host func(t *testing.T, r *testregistry.Registry) config.Host
	}{
		{
			name: "plain http",
			host: func(t *testing.T, r *testregistry.Registry) config.Host {
				return config.Host{Name: r.Host, TLS: config.TLSDisabled}
			},
		},
		{
			name: "tls with test CA file",
			opts: []testregistry.Option{testregistry.WithTLS()},
			host: func(t *testing.T, r *testregistry.Registry) config.Host {
				pem, err := os.ReadFile(r.CAFile)
				if err != nil {
					t.Fatal(err)
				}
				return config.Host{Name: r.Host, TLS: config.TLSEnabled, RegCert: string(pem)}
			},
		},
		{
			name: "filesystem storage",
			opts: []testregistry.Option{testregistry.WithFilesystem(t.TempDir())},
			host: func(t *testing.T, r *testregistry.Registry) config.Host {
				return r.ConfigHost()
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			r := testregistry.New(t, tc.opts...)
			rc := regclient.New(regclient.WithConfigHost(tc.host(t, r)))
			want := pushIndex(ctx, t, rc, r.Ref("providers/hashicorp/null:3.2.1"), []byte("zip bytes "+tc.name))
			checkIndex(ctx, t, rc, r.Ref("providers/hashicorp/null:3.2.1"), want)
		})
	}
}

func TestTLSRejectsUntrustedClient(t *testing.T) {
	r := testregistry.New(t, testregistry.WithTLS())
	resp, err := http.Get(r.URL + "/v2/")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("GET %s/v2/ without the test CA succeeded", r.URL)
	}
}

func TestHtpasswd(t *testing.T) {
	tests := []struct {
		name string
		opts []testregistry.Option
	}{
		{"tls", []testregistry.Option{testregistry.WithTLS()}},
		// Distribution does not enforce TLS for htpasswd, nor regclient
		// for sending basic auth to a TLS-disabled host.
		{"plain http", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			r := testregistry.New(t, append(tc.opts, testregistry.WithHtpasswd("mirror", "s3cret"))...)
			refStr := r.Ref("modules/acme/vpc/aws:1.0.0")

			anon := regclient.New(regclient.WithConfigHost(r.ConfigHost()), regclient.WithRetryLimit(1))
			rf, err := ref.New(refStr)
			if err != nil {
				t.Fatal(err)
			}
			emptyDesc := blobDesc(mediatype.OCI1Empty, descriptor.EmptyData)
			_, err = anon.BlobPut(ctx, rf, emptyDesc, bytes.NewReader(descriptor.EmptyData))
			if !errors.Is(err, errs.ErrHTTPUnauthorized) {
				t.Fatalf("anonymous blob put: err = %v, want %v", err, errs.ErrHTTPUnauthorized)
			}

			authed := regclient.New(
				regclient.WithDockerCredsFile(r.DockerConfig(t)),
				regclient.WithConfigHost(r.ConfigHost()),
			)
			want := pushIndex(ctx, t, authed, refStr, []byte("module zip"))
			checkIndex(ctx, t, authed, refStr, want)

			// Client carries the credentials itself.
			checkIndex(ctx, t, r.Client(), refStr, want)
		})
	}
}

func TestCounts(t *testing.T) {
	r := testregistry.New(t)
	rc := r.Client()
	ctx := context.Background()
	refStr := r.Ref("p/a/b:1.0.0")
	want := pushIndex(ctx, t, rc, refStr, []byte("layer"))

	c := r.Counts()
	if c.ManifestPut != 2 {
		t.Errorf("ManifestPut = %d, want 2 (platform manifest and index)", c.ManifestPut)
	}
	if c.BlobUploadStart != 2 {
		t.Errorf("BlobUploadStart = %d, want 2 (config and layer)", c.BlobUploadStart)
	}
	if c.Pushes() < 4 {
		t.Errorf("Pushes() = %d, want at least 4", c.Pushes())
	}
	sum := c.BlobHead + c.BlobGet + c.BlobUploadStart + c.BlobUploadPut + c.BlobUploadPatch +
		c.ManifestHead + c.ManifestGet + c.ManifestPut + c.TagList + c.Other
	if c.Total != sum {
		t.Errorf("Total = %d, sum of kinds = %d: %+v", c.Total, sum, c)
	}

	r.ResetCounts()
	if got := r.Counts(); got != (testregistry.Counts{}) {
		t.Fatalf("after ResetCounts: %+v", got)
	}
	checkIndex(ctx, t, rc, refStr, want)
	rf, _ := ref.New(refStr)
	if _, err := rc.ManifestHead(ctx, rf, regclient.WithManifestRequireDigest()); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.TagList(ctx, rf); err != nil {
		t.Fatal(err)
	}
	c = r.Counts()
	if c.Pushes() != 0 || c.ManifestGet != 1 || c.ManifestHead != 1 || c.BlobGet != 1 || c.TagList != 1 {
		t.Errorf("read-only counts = %+v", c)
	}
}

func TestClassify(t *testing.T) {
	r := testregistry.New(t)
	tests := []struct {
		method, path string
		get          func(testregistry.Counts) int
	}{
		{"GET", "/v2/", func(c testregistry.Counts) int { return c.Other }},
		{"HEAD", "/v2/a/blobs/sha256:" + fmt.Sprintf("%064d", 0), func(c testregistry.Counts) int { return c.BlobHead }},
		{"GET", "/v2/a/b/blobs/sha256:" + fmt.Sprintf("%064d", 0), func(c testregistry.Counts) int { return c.BlobGet }},
		{"POST", "/v2/a/b/c/blobs/uploads/", func(c testregistry.Counts) int { return c.BlobUploadStart }},
		{"PATCH", "/v2/a/blobs/uploads/some-id", func(c testregistry.Counts) int { return c.BlobUploadPatch }},
		{"PUT", "/v2/a/blobs/uploads/some-id", func(c testregistry.Counts) int { return c.BlobUploadPut }},
		{"GET", "/v2/a/blobs/uploads/some-id", func(c testregistry.Counts) int { return c.Other }},
		{"HEAD", "/v2/blobs/manifests/1.0.0", func(c testregistry.Counts) int { return c.ManifestHead }},
		{"GET", "/v2/a/manifests/1.0.0", func(c testregistry.Counts) int { return c.ManifestGet }},
		{"PUT", "/v2/a/manifests/1.0.0", func(c testregistry.Counts) int { return c.ManifestPut }},
		{"DELETE", "/v2/a/manifests/1.0.0", func(c testregistry.Counts) int { return c.Other }},
		{"GET", "/v2/tags/tags/list", func(c testregistry.Counts) int { return c.TagList }},
		{"GET", "/v2/_catalog", func(c testregistry.Counts) int { return c.Other }},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r.ResetCounts()
			req, err := http.NewRequest(tc.method, r.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			c := r.Counts()
			if tc.get(c) != 1 || c.Total != 1 {
				t.Errorf("counts = %+v", c)
			}
		})
	}
}

func TestMiddlewareFault(t *testing.T) {
	var failed atomic.Bool
	failFirstBlobPut := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.Method == http.MethodPut && bytes.Contains([]byte(req.URL.Path), []byte("/blobs/uploads/")) &&
				failed.CompareAndSwap(false, true) {
				_, _ = io.Copy(io.Discard, req.Body)
				http.Error(w, "injected", http.StatusInternalServerError)
				return
			}
			next.ServeHTTP(w, req)
		})
	}
	r := testregistry.New(t, testregistry.WithMiddleware(failFirstBlobPut))
	ctx := context.Background()
	rc := r.Client()
	want := pushIndex(ctx, t, rc, r.Ref("x/y:1.0.0"), []byte("retried layer"))
	checkIndex(ctx, t, rc, r.Ref("x/y:1.0.0"), want)
	if !failed.Load() {
		t.Fatal("middleware never saw a blob PUT")
	}
	if c := r.Counts(); c.BlobUploadPut < 3 {
		t.Errorf("BlobUploadPut = %d, want at least 3 (2 blobs + 1 retry): %+v", c.BlobUploadPut, c)
	}
}

func TestTagPagination(t *testing.T) {
	const pageSize = 3
	r := testregistry.New(t, testregistry.WithTagPageSize(pageSize))
	ctx := context.Background()
	rc := r.Client()
	var want []string
	for i := range 7 {
		tag := fmt.Sprintf("1.0.%d", i)
		want = append(want, tag)
		pushIndex(ctx, t, rc, r.Ref("paged:"+tag), []byte("layer "+tag))
	}
	r.ResetCounts()
	rf, _ := ref.New(r.Ref("paged"))
	tl, err := rc.TagList(ctx, rf)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tl.GetTags()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("tags = %v, want %v", got, want)
	}
	if c := r.Counts(); c.TagList != 3 {
		t.Errorf("TagList requests = %d, want 3 pages of at most %d", c.TagList, pageSize)
	}

	// An explicit larger n is clamped to the page size.
	resp, err := http.Get(r.URL + "/v2/paged/tags/list?n=100")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Link") == "" {
		t.Errorf("n=100 answered without a Link header")
	}
}

func TestStopRestart(t *testing.T) {
	tests := []struct {
		name string
		opts []testregistry.Option
	}{
		{"inmemory", nil},
		{"filesystem", []testregistry.Option{testregistry.WithFilesystem(t.TempDir())}},
		{"filesystem tls htpasswd", []testregistry.Option{
			testregistry.WithFilesystem(t.TempDir()), testregistry.WithTLS(), testregistry.WithHtpasswd("u", "p"),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			r := testregistry.New(t, tc.opts...)
			refStr := r.Ref("restart/me:1.0.0")
			want := pushIndex(ctx, t, r.Client(), refStr, []byte("survives"))

			r.Stop()
			rf, _ := ref.New(refStr)
			fast := r.Client(
				regclient.WithRetryLimit(1),
				regclient.WithRegOpts(reg.WithDelay(time.Millisecond, time.Millisecond)),
			)
			if _, err := fast.ManifestHead(ctx, rf); err == nil {
				t.Fatal("manifest head succeeded while stopped")
			}
			r.Stop() // idempotent

			r.Restart()
			// A new client: the stopped one may have backed off this host.
			checkIndex(ctx, t, r.Client(), refStr, want)
		})
	}
}
