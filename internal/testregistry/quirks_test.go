package testregistry_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/errs"
	"github.com/regclient/regclient/types/manifest"
	"github.com/regclient/regclient/types/mediatype"
	v1 "github.com/regclient/regclient/types/oci/v1"
	"github.com/regclient/regclient/types/platform"
	"github.com/regclient/regclient/types/ref"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
)

func TestRefuseSubject(t *testing.T) {
	for _, impl := range implementations {
		t.Run(impl.String(), func(t *testing.T) {
			ctx := context.Background()
			r := testregistry.New(t, testregistry.WithImplementation(impl), testregistry.WithMiddleware(testregistry.RefuseSubject()))
			rc := r.Client()
			a := pushIndex(ctx, t, rc, r.Ref("p/h/null:1.0.0"), []byte("zip"))
			_, err := pushReferrer(ctx, t, rc, r.Ref("p/h/null"), a.index, "application/vnd.tofu-oci-mirror.provenance.v1")
			if err == nil || !strings.Contains(err.Error(), "[http 405]") || !strings.Contains(err.Error(), testregistry.ECRSubjectRefusedMessage) {
				t.Fatalf("referrer push: err = %v, want 405 with the registry's message", err)
			}
		})
	}
}

func TestMediaTypeAllowlist(t *testing.T) {
	for _, impl := range implementations {
		t.Run(impl.String(), func(t *testing.T) {
			ctx := context.Background()
			allow := &testregistry.MediaTypeAllowlist{Allowed: []string{"archive/zip", "application/vnd.opentofu.provider-target"}}
			r := testregistry.New(t, testregistry.WithImplementation(impl), testregistry.WithMiddleware(allow.Middleware()))
			rc := r.Client()
			rf, _ := ref.New(r.Ref("p/h/null:1.0.0"))
			// pushIndex fails the test at the index, so push by hand up to it.
			layer := []byte("zip")
			if _, err := rc.BlobPut(ctx, rf, blobDesc("archive/zip", layer), bytes.NewReader(layer)); err != nil {
				t.Fatal(err)
			}
			idx := providerIndexFor(t, ctx, rc, rf, layer)
			err := rc.ManifestPut(ctx, rf, idx)
			if err == nil || !strings.Contains(err.Error(), "[http 400]") || !strings.Contains(err.Error(), "MANIFEST_INVALID") ||
				!strings.Contains(err.Error(), `application/vnd.opentofu.provider\"`) {
				t.Fatalf("index push: err = %v, want 400 MANIFEST_INVALID naming the provider artifact type", err)
			}
			allow.Allowed = append(allow.Allowed, "application/vnd.opentofu.provider")
			if err := rc.ManifestPut(ctx, rf, idx); err != nil {
				t.Fatalf("index push once allowed: %v", err)
			}
			if got := allow.Refused(); len(got) != 1 || got[0] != "application/vnd.opentofu.provider" {
				t.Fatalf("refused %v", got)
			}
		})
	}
}

func TestRepositoriesMustExist(t *testing.T) {
	for _, impl := range implementations {
		t.Run(impl.String(), func(t *testing.T) {
			ctx := context.Background()
			repos := testregistry.NewRepositories("p/created")
			r := testregistry.New(t, testregistry.WithImplementation(impl), testregistry.WithMiddleware(repos.Middleware()))
			rc := r.Client()
			err := putBlob(ctx, rc, r.Ref("p/new"), []byte("x"))
			if !errors.Is(err, errs.ErrNotFound) || !strings.Contains(err.Error(), "NAME_UNKNOWN") {
				t.Fatalf("push to a missing repository: err = %v, want 404 NAME_UNKNOWN", err)
			}
			pushIndex(ctx, t, rc, r.Ref("p/created:1.0.0"), []byte("zip"))
			repos.Create("p/new")
			pushIndex(ctx, t, rc, r.Ref("p/new:1.0.0"), []byte("zip"))
			if repos.Refused() == 0 {
				t.Fatal("nothing refused")
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	for _, impl := range implementations {
		t.Run(impl.String(), func(t *testing.T) {
			ctx := context.Background()
			limit := &testregistry.BodyLimit{Max: 1<<20 + 4096}
			r := testregistry.New(t, testregistry.WithImplementation(impl), testregistry.WithMiddleware(limit.Middleware()))
			rc := r.Client()
			rf, _ := ref.New(r.Ref("p/big"))
			data := bytes.Repeat([]byte("0123456789abcdef"), 3<<16) // 3 MiB
			d := descriptor.Descriptor{MediaType: "archive/zip", Digest: digest.FromBytes(data), Size: int64(len(data))}
			// Not seekable: regclient cannot fall back to chunks.
			_, err := rc.BlobPut(ctx, rf, d, io.MultiReader(bytes.NewReader(data)))
			if err == nil || !strings.Contains(err.Error(), "[http 413]") {
				t.Fatalf("monolithic 3 MiB: err = %v, want 413", err)
			}
			r.ResetCounts()
			// Chunks under the limit pass. Not regclient's own fallback
			// (a seekable reader after a failed PUT): nginx, and this
			// middleware, answer 413 before the body is sent, net/http
			// keeps writing the body in its write loop, and regclient
			// seeks and rereads the same reader meanwhile, a data race
			// (go test -race) that corrupts the chunks. A client told to
			// chunk from the start, with a fresh reader, is safe.
			chunked := r.Client(regclient.WithBlobSize(1<<20, 1<<20))
			if _, err := chunked.BlobPut(ctx, rf, d, bytes.NewReader(data)); err != nil {
				t.Fatalf("chunked upload: %v", err)
			}
			if c := r.Counts(); c.BlobUploadPatch < 3 {
				t.Fatalf("%d PATCHes, want chunks", c.BlobUploadPatch)
			}
			if _, err := rc.BlobHead(ctx, rf, d); err != nil {
				t.Fatalf("blob after chunked upload: %v", err)
			}

			// A body without Content-Length is cut off at the limit.
			pr, pw := io.Pipe()
			go func() {
				_, _ = pw.Write(data)
				_ = pw.Close()
			}()
			post, err := http.Post(r.URL+"/v2/p/big/blobs/uploads/", "", nil)
			if err != nil {
				t.Fatal(err)
			}
			post.Body.Close()
			loc := post.Header.Get("Location")
			if !strings.HasPrefix(loc, "http") {
				loc = r.URL + loc
			}
			req, _ := http.NewRequest(http.MethodPatch, loc, pr)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "nginx") {
				t.Fatalf("streamed body: %d %s", resp.StatusCode, body)
			}
		})
	}
}

// providerIndexFor pushes the empty config and one platform manifest for
// layer (already pushed) and returns the provider index, not pushed.
func providerIndexFor(t *testing.T, ctx context.Context, rc *regclient.RegClient, r ref.Ref, layer []byte) manifest.Manifest {
	t.Helper()
	emptyDesc := blobDesc(mediatype.OCI1Empty, descriptor.EmptyData)
	if _, err := rc.BlobPut(ctx, r, emptyDesc, bytes.NewReader(descriptor.EmptyData)); err != nil {
		t.Fatal(err)
	}
	m, err := manifest.New(manifest.WithOrig(v1.Manifest{
		Versioned: v1.ManifestSchemaVersion, MediaType: mediatype.OCI1Manifest,
		ArtifactType: "application/vnd.opentofu.provider-target", Config: emptyDesc,
		Layers: []descriptor.Descriptor{blobDesc("archive/zip", layer)},
	}))
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.ManifestPut(ctx, r.SetDigest(m.GetDescriptor().Digest.String()), m, regclient.WithManifestChild()); err != nil {
		t.Fatalf("platform manifest: %v", err)
	}
	md := m.GetDescriptor()
	md.ArtifactType = "application/vnd.opentofu.provider-target"
	md.Platform = &platform.Platform{OS: "linux", Architecture: "amd64"}
	idx, err := manifest.New(manifest.WithOrig(v1.Index{
		Versioned: v1.IndexSchemaVersion, MediaType: mediatype.OCI1ManifestList,
		ArtifactType: "application/vnd.opentofu.provider", Manifests: []descriptor.Descriptor{md},
	}))
	if err != nil {
		t.Fatal(err)
	}
	return idx
}
