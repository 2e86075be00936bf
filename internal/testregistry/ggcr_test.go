package testregistry_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient"
	"github.com/regclient/regclient/scheme"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/manifest"
	"github.com/regclient/regclient/types/mediatype"
	v1 "github.com/regclient/regclient/types/oci/v1"
	"github.com/regclient/regclient/types/ref"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
)

var implementations = []testregistry.Implementation{testregistry.Distribution, testregistry.GoContainerRegistry, testregistry.GoContainerRegistryNoReferrers}

func tlsConfigFor(t *testing.T, r *testregistry.Registry) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(r.CACertPEM) {
		t.Fatal("no CA certificate")
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// pushReferrer pushes an artifact of artifactType with an empty config
// and one layer, whose subject is subj.
func pushReferrer(ctx context.Context, t *testing.T, rc *regclient.RegClient, repoRef string, subj descriptor.Descriptor, artifactType string) (descriptor.Descriptor, error) {
	t.Helper()
	r, err := ref.New(repoRef)
	if err != nil {
		t.Fatal(err)
	}
	layer := []byte("SHA256SUMS for " + artifactType)
	layerDesc := blobDesc("text/plain; charset=utf-8", layer)
	emptyDesc := blobDesc(mediatype.OCI1Empty, descriptor.EmptyData)
	for _, b := range []struct {
		d    descriptor.Descriptor
		data []byte
	}{{emptyDesc, descriptor.EmptyData}, {layerDesc, layer}} {
		if _, err := rc.BlobPut(ctx, r, b.d, bytes.NewReader(b.data)); err != nil {
			t.Fatalf("blob put: %v", err)
		}
	}
	s := descriptor.Descriptor{MediaType: subj.MediaType, Digest: subj.Digest, Size: subj.Size}
	m, err := manifest.New(manifest.WithOrig(v1.Manifest{
		Versioned: v1.ManifestSchemaVersion, MediaType: mediatype.OCI1Manifest,
		ArtifactType: artifactType, Config: emptyDesc, Layers: []descriptor.Descriptor{layerDesc}, Subject: &s,
	}))
	if err != nil {
		t.Fatal(err)
	}
	return m.GetDescriptor(), rc.ManifestPut(ctx, r.SetDigest(m.GetDescriptor().Digest.String()), m)
}

func TestImplementationsPushPull(t *testing.T) {
	for _, impl := range implementations {
		t.Run(impl.String(), func(t *testing.T) {
			ctx := context.Background()
			r := testregistry.New(t, testregistry.WithTLS(), testregistry.WithImplementation(impl))
			if r.Implementation() != impl {
				t.Fatalf("Implementation() = %v", r.Implementation())
			}
			rc := r.Client()
			a := pushIndex(ctx, t, rc, r.Ref("p/h/null:1.0.0"), bytes.Repeat([]byte("z"), 3<<20))
			checkIndex(ctx, t, rc, r.Ref("p/h/null:1.0.0"), a)
			if c := r.Counts(); c.ManifestPut != 2 || c.BlobUploadStart == 0 {
				t.Fatalf("counts %+v", c)
			}
		})
	}
}

// TestGGCRReferrers proves the referrers workarounds: artifactType from
// the manifest, the artifactType filter, and OCI-Subject (without it
// regclient would also write the sha256-<hex> fallback tag).
func TestGGCRReferrers(t *testing.T) {
	ctx := context.Background()
	r := testregistry.New(t, testregistry.WithTLS(), testregistry.WithImplementation(testregistry.GoContainerRegistry))
	rc := r.Client()
	a := pushIndex(ctx, t, rc, r.Ref("p/h/null:1.0.0"), []byte("zip"))
	for _, at := range []string{"application/vnd.tofu-oci-mirror.provenance.v1", "application/vnd.example.other"} {
		if _, err := pushReferrer(ctx, t, rc, r.Ref("p/h/null"), a.index, at); err != nil {
			t.Fatalf("referrer %s: %v", at, err)
		}
	}
	subj, _ := ref.New(r.Ref("p/h/null@" + a.index.Digest.String()))
	rl, err := rc.ReferrerList(ctx, subj, scheme.WithReferrerMatchOpt(descriptor.MatchOpt{ArtifactType: "application/vnd.tofu-oci-mirror.provenance.v1"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(rl.Descriptors) != 1 || rl.Descriptors[0].ArtifactType != "application/vnd.tofu-oci-mirror.provenance.v1" || len(rl.Tags) != 0 {
		t.Fatalf("referrers = %+v (tags %v), want one provenance descriptor from the API", rl.Descriptors, rl.Tags)
	}
	rf, _ := ref.New(r.Ref("p/h/null"))
	tl, err := rc.TagList(ctx, rf)
	if err != nil {
		t.Fatal(err)
	}
	if tags, _ := tl.GetTags(); !slices.Equal(tags, []string{"1.0.0"}) {
		t.Fatalf("tags = %v: a fallback tag means OCI-Subject was missing", tags)
	}

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfigFor(t, r)}}
	resp, err := client.Get(fmt.Sprintf("%s/v2/p/h/null/referrers/%s?artifactType=application/vnd.example.other", r.URL, a.index.Digest))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var idx v1.Index
	if err := json.NewDecoder(resp.Body).Decode(&idx); err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("OCI-Filters-Applied") != "artifactType" || len(idx.Manifests) != 1 || idx.Manifests[0].ArtifactType != "application/vnd.example.other" {
		t.Fatalf("filtered referrers: header %q, %+v", resp.Header.Get("OCI-Filters-Applied"), idx.Manifests)
	}
}

func TestGGCRUploadStatus(t *testing.T) {
	r := testregistry.New(t, testregistry.WithImplementation(testregistry.GoContainerRegistry))
	post, err := http.Post(r.URL+"/v2/p/x/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	loc := post.Header.Get("Location")
	if post.StatusCode != http.StatusAccepted || loc == "" {
		t.Fatalf("POST: %d, Location %q", post.StatusCode, loc)
	}
	req, _ := http.NewRequest(http.MethodPatch, r.URL+loc, strings.NewReader("hello"))
	req.Header.Set("Content-Range", "0-4")
	patch, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	patch.Body.Close()
	st, err := http.Get(r.URL + loc)
	if err != nil {
		t.Fatal(err)
	}
	st.Body.Close()
	if st.StatusCode != http.StatusNoContent || st.Header.Get("Range") != "0-4" {
		t.Fatalf("upload status: %d, Range %q, want 204 and 0-4", st.StatusCode, st.Header.Get("Range"))
	}
	put, _ := http.NewRequest(http.MethodPut, r.URL+loc+"?digest="+digest.FromString("hello").String(), nil)
	resp, err := http.DefaultClient.Do(put)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %d", resp.StatusCode)
	}
	if st, _ := http.Get(r.URL + loc); st.StatusCode != http.StatusNotFound {
		t.Fatalf("status of a finished upload: %d, want 404", st.StatusCode)
	}
}

// TestGGCRConcurrentUploadsHTTP1 pushes blobs in parallel through a
// client that would use HTTP/2 if offered: the server must answer in
// HTTP/1.1, and the uploads must all finish.
func TestGGCRConcurrentUploadsHTTP1(t *testing.T) {
	r := testregistry.New(t, testregistry.WithTLS(), testregistry.WithImplementation(testregistry.GoContainerRegistry))
	tr := &http.Transport{TLSClientConfig: tlsConfigFor(t, r), ForceAttemptHTTP2: true}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	resp, err := client.Get(r.URL + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Proto != "HTTP/1.1" {
		t.Fatalf("protocol %s, want HTTP/1.1", resp.Proto)
	}
	rc := r.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 6)
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := bytes.Repeat([]byte{byte(i)}, 2<<20)
			errc <- putBlob(ctx, rc, r.Ref("p/concurrent"), data)
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestImplementationsTagPagination(t *testing.T) {
	for _, impl := range implementations {
		t.Run(impl.String(), func(t *testing.T) {
			ctx := context.Background()
			r := testregistry.New(t, testregistry.WithImplementation(impl), testregistry.WithTagPageSize(2))
			rc := r.Client()
			var want []string
			for i := range 5 {
				tag := fmt.Sprintf("1.0.%d", i)
				want = append(want, tag)
				pushIndex(ctx, t, rc, r.Ref("p/tags:"+tag), []byte("zip "+tag))
			}
			r.ResetCounts()
			rf, _ := ref.New(r.Ref("p/tags"))
			tl, err := rc.TagList(ctx, rf)
			if err != nil {
				t.Fatal(err)
			}
			tags, _ := tl.GetTags()
			if !slices.Equal(tags, want) {
				t.Fatalf("tags = %v, want %v", tags, want)
			}
			if c := r.Counts(); c.TagList != 3 {
				t.Fatalf("%d tag list pages, want 3", c.TagList)
			}
			resp, err := http.Get(r.URL + "/v2/p/tags/tags/list?n=2&last=1.0.4")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(body), `"tags":[]`) && !strings.Contains(string(body), `"tags":null`) {
				t.Fatalf("page after the last tag: %s", body)
			}
		})
	}
}
