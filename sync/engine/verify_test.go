package engine_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/mediatype"
	"github.com/regclient/regclient/types/ref"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/target"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/verify"
)

const widgetRepo = "opentofu-providers/acme/widget"

// widgetPlan wants two platforms; upstream releases 1.1.0 for one only.
const widgetPlan = `
platforms: [linux_amd64, darwin_arm64]
providers:
  - source: acme/widget
    versions: ">= 1.0.0"
`

// syncedWidget is a harness whose target holds a clean, synced mirror of
// acme/widget 1.0.0 (linux_amd64, darwin_arm64) and 1.1.0 (linux_amd64).
func syncedWidget(t *testing.T, regOpts ...testregistry.Option) (*harness, *config.Config) {
	t.Helper()
	h := newHarness(t, regOpts...)
	h.up.AddProvider("acme", "widget", "1.0.0", "linux_amd64", "darwin_arm64")
	h.up.AddProvider("acme", "widget", "1.1.0", "linux_amd64")
	cfg := h.config(widgetPlan)
	h.mustSync(cfg)
	return h, cfg
}

func (h *harness) target(cfg *config.Config) *target.Target {
	h.t.Helper()
	tg, err := target.Open(cfg.Target)
	if err != nil {
		h.t.Fatal(err)
	}
	return tg
}

func (h *harness) verify(cfg *config.Config, deep bool) *verify.Report {
	h.t.Helper()
	rep, err := verify.Run(context.Background(), cfg, h.target(cfg), verify.WithDeep(deep))
	if err != nil {
		h.t.Fatalf("verify: %v", err)
	}
	return rep
}

// findings flattens problems or warnings to "code version platform" lines.
func findings(ps []verify.Problem) []string {
	out := []string{}
	for _, p := range ps {
		out = append(out, strings.TrimSpace(fmt.Sprintf("%s %s %s", p.Code, p.Version, p.Platform)))
	}
	return out
}

func assertFindings(t *testing.T, what string, ps []verify.Problem, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if got := findings(ps); strings.Join(got, "\n") != strings.Join(want, "\n") {
		var full []string
		for _, p := range ps {
			full = append(full, p.String())
		}
		t.Fatalf("%s:\n  %s\nwant:\n  %s", what, strings.Join(full, "\n  "), strings.Join(want, "\n  "))
	}
}

// indexOf reads a version's index from the target.
func indexOf(t *testing.T, tg *target.Target, repo, tag string) (*manifest.ProviderIndexInfo, descriptor.Descriptor) {
	t.Helper()
	raw, desc, err := tg.Manifest(context.Background(), repo, tag)
	if err != nil {
		t.Fatal(err)
	}
	info, err := manifest.ParseProviderIndex(raw)
	if err != nil {
		t.Fatal(err)
	}
	desc.ArtifactType = manifest.ProviderIndexArtifactType
	return info, desc
}

// pushBlob uploads data and returns its descriptor.
func pushBlob(t *testing.T, tg *target.Target, repo, mediaType string, data []byte) descriptor.Descriptor {
	t.Helper()
	d := descriptor.Descriptor{MediaType: mediaType, Digest: digest.SHA256.FromBytes(data), Size: int64(len(data))}
	if err := tg.PutBlob(context.Background(), repo, d, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	return d
}

func pushManifest(t *testing.T, tg *target.Target, repo string, a manifest.Artifact, tag string) {
	t.Helper()
	if err := tg.PutManifest(context.Background(), repo, a, tag); err != nil {
		t.Fatal(err)
	}
}

// retag pushes an index of the given platforms at tag.
func retag(t *testing.T, tg *target.Target, repo, tag string, platforms []manifest.PlatformManifest) manifest.Artifact {
	t.Helper()
	idx, err := manifest.ProviderIndex(platforms)
	if err != nil {
		t.Fatal(err)
	}
	pushManifest(t, tg, repo, idx, tag)
	return idx
}

// provenanceLayers returns the layers of the provenance artifact referring to index.
func provenanceLayers(t *testing.T, tg *target.Target, repo string, index digest.Digest) (sums, sig, key descriptor.Descriptor) {
	t.Helper()
	ctx := context.Background()
	refs, err := tg.Referrers(ctx, repo, index, manifest.ProvenanceArtifactType)
	if err != nil || len(refs) != 1 {
		t.Fatalf("provenance referrers of %s: %v %v", index, refs, err)
	}
	raw, _, err := tg.ManifestByDigest(ctx, repo, refs[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Layers []descriptor.Descriptor `json:"layers"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for _, l := range m.Layers {
		switch l.MediaType {
		case manifest.SHA256SUMSMediaType:
			sums = l
		case manifest.SignatureMediaType:
			sig = l
		case manifest.PublicKeyMediaType:
			key = l
		}
	}
	return sums, sig, key
}

// pushStrangerProvenance adds a second provenance to a widget version: the
// genuine SHA256SUMS and key, but a signature by a key nobody trusts.
func pushStrangerProvenance(t *testing.T, h *harness, tg *target.Target, version string) manifest.Artifact {
	t.Helper()
	_, index := indexOf(t, tg, widgetRepo, version)
	sums, _, key := provenanceLayers(t, tg, widgetRepo, index.Digest)
	stranger, err := openpgp.NewEntity("stranger", "", "stranger@example.com", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	sumsData, _ := h.up.SHA256SUMS("acme", "widget", version)
	var sigData bytes.Buffer
	if err := openpgp.DetachSign(&sigData, stranger, bytes.NewReader(sumsData), nil); err != nil {
		t.Fatal(err)
	}
	sig := pushBlob(t, tg, widgetRepo, manifest.SignatureMediaType, sigData.Bytes())
	prov, err := manifest.Provenance(index, sums, sig, key)
	if err != nil {
		t.Fatal(err)
	}
	pushManifest(t, tg, widgetRepo, prov, "")
	return prov
}

func zipOf(t *testing.T, name, content string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create(name)
	if err == nil {
		_, err = w.Write([]byte(content))
	}
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestVerifyCleanMirror(t *testing.T) {
	h, cfg := syncedWidget(t)
	for _, deep := range []bool{false, true} {
		t.Run(fmt.Sprintf("deep=%v", deep), func(t *testing.T) {
			h.reg.ResetCounts()
			rep := h.verify(cfg, deep)
			if rep.Checked != 2 || rep.Deep != deep {
				t.Fatalf("checked %d versions (deep %v), want 2", rep.Checked, rep.Deep)
			}
			assertFindings(t, "problems", rep.Problems)
			// 1.1.0 lacks darwin_arm64, and the signed SHA256SUMS shows why.
			assertFindings(t, "warnings", rep.Warnings, "not-released 1.1.0 darwin_arm64")
			c := h.reg.Counts()
			if c.Pushes() != 0 {
				t.Fatalf("verify wrote to the registry: %+v", c)
			}
			// 2 tags + 3 platform manifests + 2 provenance manifests + 2 fallback tags.
			if c.TagList != 1 || c.ManifestGet != 9 {
				t.Errorf("registry reads: %+v", c)
			}
			// Shallow: 3 layers and the shared empty config by HEAD, provenance
			// files (3 per version) by GET; deep GETs the 4 blobs instead.
			if wantHead, wantGet := 4, 6; deep && (c.BlobHead != 0 || c.BlobGet != wantHead+wantGet) || !deep && (c.BlobHead != wantHead || c.BlobGet != wantGet) {
				t.Errorf("blob requests: %+v", c)
			}
			t.Logf("requests: %+v", c)
		})
	}
}

func TestVerifyCleanLayout(t *testing.T) {
	h := newHarness(t)
	h.registry = "oci-layout:" + t.TempDir()
	h.up.AddProvider("acme", "widget", "1.0.0", "linux_amd64", "darwin_arm64")
	cfg := h.config(widgetPlan)
	h.mustSync(cfg)
	rep := h.verify(cfg, true)
	assertFindings(t, "problems", rep.Problems)
	assertFindings(t, "warnings", rep.Warnings)
}

func TestVerifyFindsBrokenMirrors(t *testing.T) {
	cases := []struct {
		name string
		// breakIt damages the synced widget mirror.
		breakIt func(t *testing.T, h *harness, tg *target.Target)
		// problems and warnings, for a shallow and a deep verify alike.
		problems, warnings []string
	}{
		{
			name: "layer blob deleted",
			breakIt: func(t *testing.T, h *harness, tg *target.Target) {
				r, _ := ref.New(h.reg.Host + "/" + widgetRepo)
				d := digest.NewDigestFromEncoded(digest.SHA256, h.up.ZipSHA256("acme", "widget", "1.0.0", "linux_amd64"))
				if err := h.reg.Client().BlobDelete(context.Background(), r, descriptor.Descriptor{Digest: d}); err != nil {
					t.Fatal(err)
				}
			},
			problems: []string{"missing-blob 1.0.0 linux_amd64"},
			warnings: []string{"not-released 1.1.0 darwin_arm64"},
		},
		{
			name: "platform manifest deleted",
			breakIt: func(t *testing.T, h *harness, tg *target.Target) {
				info, _ := indexOf(t, tg, widgetRepo, "1.0.0")
				r, _ := ref.New(h.reg.Host + "/" + widgetRepo + "@" + info.Platforms["darwin_arm64"].Manifest.Digest.String())
				if err := h.reg.Client().ManifestDelete(context.Background(), r); err != nil {
					t.Fatal(err)
				}
			},
			problems: []string{"missing-manifest 1.0.0 darwin_arm64"},
			warnings: []string{"not-released 1.1.0 darwin_arm64"},
		},
		{
			name: "tag holds a plain image",
			breakIt: func(t *testing.T, h *harness, tg *target.Target) {
				cfgBlob := pushBlob(t, tg, widgetRepo, mediatype.OCI1ImageConfig, []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
				raw, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": mediatype.OCI1Manifest, "config": cfgBlob, "layers": []any{}})
				a := manifest.Artifact{Descriptor: descriptor.Descriptor{MediaType: mediatype.OCI1Manifest, Digest: digest.SHA256.FromBytes(raw), Size: int64(len(raw))}, Raw: raw}
				pushManifest(t, tg, widgetRepo, a, "1.1.0")
			},
			problems: []string{"contract 1.1.0"},
		},
		{
			name: "index lacks a wanted platform",
			breakIt: func(t *testing.T, h *harness, tg *target.Target) {
				info, _ := indexOf(t, tg, widgetRepo, "1.0.0")
				retag(t, tg, widgetRepo, "1.0.0", []manifest.PlatformManifest{info.Platforms["linux_amd64"]})
			},
			problems: []string{"missing-platform 1.0.0 darwin_arm64"},
			// Another tool's push: no provenance refers to the new index.
			warnings: []string{"no-provenance 1.0.0", "not-released 1.1.0 darwin_arm64"},
		},
		{
			name: "index holds a package the signed SHA256SUMS does not list",
			breakIt: func(t *testing.T, h *harness, tg *target.Target) {
				info, old := indexOf(t, tg, widgetRepo, "1.0.0")
				zipData := zipOf(t, "terraform-provider-widget", "not from upstream")
				layer := pushBlob(t, tg, widgetRepo, manifest.ZipLayerMediaType, zipData)
				pushBlob(t, tg, widgetRepo, mediatype.OCI1Empty, descriptor.EmptyData)
				pm, err := manifest.ProviderTarget(layer, "terraform-provider-widget_1.0.0_freebsd_amd64.zip")
				if err != nil {
					t.Fatal(err)
				}
				pushManifest(t, tg, widgetRepo, pm, "")
				idx := retag(t, tg, widgetRepo, "1.0.0", []manifest.PlatformManifest{
					info.Platforms["linux_amd64"], info.Platforms["darwin_arm64"], {OS: "freebsd", Arch: "amd64", Manifest: pm.Descriptor}})
				// The genuine signed files, now claiming the new index.
				sums, sig, key := provenanceLayers(t, tg, widgetRepo, old.Digest)
				prov, err := manifest.Provenance(idx.Descriptor, sums, sig, key)
				if err != nil {
					t.Fatal(err)
				}
				pushManifest(t, tg, widgetRepo, prov, "")
			},
			problems: []string{"provenance 1.0.0 freebsd_amd64"},
			warnings: []string{"not-released 1.1.0 darwin_arm64"},
		},
		{
			name: "provenance signed by another key",
			breakIt: func(t *testing.T, h *harness, tg *target.Target) {
				pushStrangerProvenance(t, h, tg, "1.1.0")
			},
			problems: []string{"provenance 1.1.0"},
			// The genuine provenance still verifies, so the release check stands.
			warnings: []string{"not-released 1.1.0 darwin_arm64"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, cfg := syncedWidget(t, testregistry.WithDelete())
			c.breakIt(t, h, h.target(cfg))
			for _, deep := range []bool{false, true} {
				rep := h.verify(cfg, deep)
				what := fmt.Sprintf("deep=%v", deep)
				assertFindings(t, what+" problems", rep.Problems, c.problems...)
				assertFindings(t, what+" warnings", rep.Warnings, c.warnings...)
				for _, p := range rep.Problems {
					t.Logf("%s: %s", what, p)
					if p.Address != "registry.opentofu.org/acme/widget" || p.Repository != widgetRepo || p.Message == "" {
						t.Errorf("problem does not name its subject: %+v", p)
					}
				}
			}
		})
	}
}

func TestVerifyProblemMessages(t *testing.T) {
	h, cfg := syncedWidget(t, testregistry.WithDelete())
	prov := pushStrangerProvenance(t, h, h.target(cfg), "1.1.0")
	layer := h.up.ZipSHA256("acme", "widget", "1.0.0", "linux_amd64")
	r, _ := ref.New(h.reg.Host + "/" + widgetRepo)
	if err := h.reg.Client().BlobDelete(context.Background(), r, descriptor.Descriptor{Digest: digest.NewDigestFromEncoded(digest.SHA256, layer)}); err != nil {
		t.Fatal(err)
	}
	rep := h.verify(cfg, false)
	var lines []string
	for _, p := range rep.Problems {
		lines = append(lines, p.String())
	}
	got := strings.Join(lines, "\n")
	for _, want := range []string{
		"provider registry.opentofu.org/acme/widget 1.0.0 linux_amd64: layer blob sha256:" + layer + ": missing from " + widgetRepo,
		"provider registry.opentofu.org/acme/widget 1.1.0: provenance " + prov.Descriptor.Digest.String() + ": stored provenance does not verify: SHA256SUMS signature is not from any of the 1 signing key(s)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
}

func TestVerifyDeepFindsRottedContent(t *testing.T) {
	dir := t.TempDir()
	h, cfg := syncedWidget(t, testregistry.WithFilesystem(dir))
	sum := h.up.ZipSHA256("acme", "widget", "1.0.0", "darwin_arm64")
	// The registry checked the digest when it stored the blob; bit rot on
	// its disk afterwards goes unnoticed until someone reads it all.
	path := filepath.Join(dir, "docker", "registry", "v2", "blobs", "sha256", sum[:2], sum, "data")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	rep := h.verify(cfg, false)
	assertFindings(t, "shallow problems", rep.Problems)
	rep = h.verify(cfg, true)
	assertFindings(t, "deep problems", rep.Problems, "blob-mismatch 1.0.0 darwin_arm64")
	if msg := rep.Problems[0].Message; !strings.Contains(msg, "sha256:"+sum) || !strings.Contains(msg, fmt.Sprintf("%d bytes", len(data))) {
		t.Errorf("message does not say what differs: %s", msg)
	}
}

func TestVerifyReportsEntriesWithNothingMirrored(t *testing.T) {
	h, _ := syncedWidget(t)
	cfg := h.config(`
platforms: [linux_amd64]
providers:
  - source: acme/widget
    versions: ">= 2.0.0"
  - source: acme/gadget
    versions: ">= 1.0.0"
modules:
  - source: acme/net/aws
    versions: "~> 1.0"
`)
	rep := h.verify(cfg, false)
	if rep.Checked != 0 {
		t.Fatalf("checked %d", rep.Checked)
	}
	assertFindings(t, "problems", rep.Problems, "nothing-mirrored", "nothing-mirrored", "nothing-mirrored")
	var addrs []string
	for _, p := range rep.Problems {
		addrs = append(addrs, string(p.Kind)+" "+p.Address)
		if !strings.Contains(p.Message, "nothing mirrored for "+p.Address) {
			t.Errorf("message: %s", p.Message)
		}
	}
	assertLines(t, addrs, "provider registry.opentofu.org/acme/widget", "provider registry.opentofu.org/acme/gadget", "module registry.opentofu.org/acme/net/aws")
}

func TestVerifyModules(t *testing.T) {
	h := newHarness(t, testregistry.WithDelete())
	cfg := h.config(`
modules:
  - source: acme/net/aws
    versions: ">= 1.0.0"
`)
	const repo = "opentofu-modules/acme/net/aws"
	tg := h.target(cfg)
	pushBlob(t, tg, repo, mediatype.OCI1Empty, descriptor.EmptyData)
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		layer := pushBlob(t, tg, repo, manifest.ZipLayerMediaType, zipOf(t, "main.tf", "# module "+v))
		a, err := manifest.ModulePackage(layer)
		if err != nil {
			t.Fatal(err)
		}
		pushManifest(t, tg, repo, a, v)
		if v == "1.2.0" {
			r, _ := ref.New(h.reg.Host + "/" + repo)
			if err := h.reg.Client().BlobDelete(context.Background(), r, layer); err != nil {
				t.Fatal(err)
			}
		}
	}
	// 1.1.0 now holds a provider index: OpenTofu wants an image manifest.
	layer := pushBlob(t, tg, repo, manifest.ZipLayerMediaType, zipOf(t, "x", "provider"))
	pm, err := manifest.ProviderTarget(layer, "")
	if err != nil {
		t.Fatal(err)
	}
	pushManifest(t, tg, repo, pm, "")
	retag(t, tg, repo, "1.1.0", []manifest.PlatformManifest{{OS: "linux", Arch: "amd64", Manifest: pm.Descriptor}})
	// Not versions: ignored.
	pushManifest(t, tg, repo, pm, "latest")

	for _, deep := range []bool{false, true} {
		rep := h.verify(cfg, deep)
		if rep.Checked != 3 {
			t.Fatalf("checked %d, want 3", rep.Checked)
		}
		assertFindings(t, "problems", rep.Problems, "contract 1.1.0", "missing-blob 1.2.0")
		assertFindings(t, "warnings", rep.Warnings)
		if p := rep.Problems[0]; p.Kind != "module" || p.Address != "registry.opentofu.org/acme/net/aws" || !strings.Contains(p.Message, "not an OpenTofu module package") {
			t.Errorf("contract problem: %+v", p)
		}
	}
}
