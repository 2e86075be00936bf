package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/regclient/regclient"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/errs"
	regmanifest "github.com/regclient/regclient/types/manifest"
	"github.com/regclient/regclient/types/mediatype"
	"github.com/regclient/regclient/types/ref"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testupstream"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/engine"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/target"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/upstream"
)

// harness wires the test upstream and a target through the real config
// loader, planner and executor.
type harness struct {
	t   *testing.T
	up  *testupstream.Server
	reg *testregistry.Registry
	// registry is the target.registry line: the registry's host, or an oci-layout: path.
	registry string
	// provenance is the target.provenance line; "" leaves it out (auto).
	provenance string
}

func newHarness(t *testing.T, regOpts ...testregistry.Option) *harness {
	t.Helper()
	h := &harness{t: t, up: testupstream.New(t), reg: testregistry.New(t, regOpts...)}
	h.registry = h.reg.Host
	return h
}

// config renders a plan file whose registry.opentofu.org is the test upstream.
func (h *harness) config(body string) *config.Config {
	h.t.Helper()
	svc := h.up.Services()
	prov := ""
	if h.provenance != "" {
		prov = "  provenance: " + h.provenance + "\n"
	}
	yaml := fmt.Sprintf(`version: 1
target:
  registry: %q
  insecure: true
%supstream:
  ca_file: %q
  hosts:
    registry.opentofu.org:
      services:
        providers.v1: %q
        modules.v1: %q
%s`, h.registry, prov, h.up.CAFile, svc["providers.v1"], svc["modules.v1"], body)
	cfg, err := config.Parse("mirror.yaml", []byte(yaml))
	if err != nil {
		h.t.Fatalf("config: %v\n%s", err, yaml)
	}
	return cfg
}

func (h *harness) clients(cfg *config.Config) (*upstream.Client, *target.Target) {
	h.t.Helper()
	hosts := map[string]map[string]string{}
	for name, o := range cfg.Upstream.Hosts {
		hosts[name] = o.Services
	}
	up, err := upstream.New(upstream.WithCAFile(cfg.Upstream.CAFile), upstream.WithHostServices(hosts),
		upstream.WithRetry(3, 10*time.Millisecond, 2*time.Second))
	if err != nil {
		h.t.Fatal(err)
	}
	tg, err := target.Open(cfg.Target)
	if err != nil {
		h.t.Fatal(err)
	}
	return up, tg
}

func (h *harness) plan(cfg *config.Config) *engine.Plan {
	h.t.Helper()
	up, tg := h.clients(cfg)
	p := engine.New(up, tg, nil).Plan(context.Background(), cfg, tg.String())
	if err := p.Errors(); err != nil {
		h.t.Fatalf("plan: %v", err)
	}
	return p
}

func (h *harness) sync(cfg *config.Config) (*engine.Plan, *item.Run) {
	h.t.Helper()
	up, tg := h.clients(cfg)
	p := engine.New(up, tg, nil).Plan(context.Background(), cfg, tg.String())
	res := engine.New(up, tg, tg, engine.WithSpoolDir(h.t.TempDir())).Execute(context.Background(), p)
	return p, res
}

func (h *harness) mustSync(cfg *config.Config) *item.Run {
	h.t.Helper()
	_, res := h.sync(cfg)
	if err := res.Err(); err != nil {
		h.t.Fatalf("sync: %v", err)
	}
	return res
}

// states flattens a plan to "address version state +adds" lines.
func states(p *engine.Plan) []string {
	var out []string
	for _, pp := range p.Providers {
		for _, v := range pp.Versions {
			line := fmt.Sprintf("%s %s %s", strings.TrimPrefix(pp.Address, "registry.opentofu.org/"), v.Version, v.State)
			if len(v.Add) > 0 {
				line += " +" + strings.Join(v.Add, ",")
			}
			out = append(out, line)
		}
	}
	return out
}

func assertLines(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// manifestAt reads the manifest behind a tag with an independent client.
func (h *harness) manifestAt(repo, tag string) (ref.Ref, []byte) {
	h.t.Helper()
	r, err := ref.New(h.reg.Host + "/" + repo + ":" + tag)
	if err != nil {
		h.t.Fatal(err)
	}
	m, err := h.reg.Client().ManifestGet(context.Background(), r)
	if err != nil {
		h.t.Fatalf("%s:%s: %v", repo, tag, err)
	}
	raw, err := m.RawBody()
	if err != nil {
		h.t.Fatal(err)
	}
	return r, raw
}

// readIndex reads a version tag from the registry with an independent client
// and checks every part of OpenTofu's contract, returning platform -> layer digest.
func (h *harness) readIndex(repo, tag string) map[string]string {
	h.t.Helper()
	rc, ctx := h.reg.Client(), context.Background()
	r, raw := h.manifestAt(repo, tag)
	var idx struct {
		MediaType    string                  `json:"mediaType"`
		ArtifactType string                  `json:"artifactType"`
		Manifests    []descriptor.Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &idx); err != nil {
		h.t.Fatal(err)
	}
	if idx.MediaType != mediatype.OCI1ManifestList || idx.ArtifactType != manifest.ProviderIndexArtifactType {
		h.t.Fatalf("%s:%s is not a provider index: %s", repo, tag, raw)
	}
	layers := map[string]string{}
	prev := ""
	for _, d := range idx.Manifests {
		if d.MediaType != mediatype.OCI1Manifest || d.ArtifactType != manifest.ProviderTargetArtifactType || d.Platform == nil {
			h.t.Fatalf("bad index entry %+v", d)
		}
		key := d.Platform.OS + "_" + d.Platform.Architecture
		if key <= prev {
			h.t.Fatalf("index entries not sorted: %s after %s", key, prev)
		}
		prev = key
		pm, err := rc.ManifestGet(ctx, r.SetDigest(d.Digest.String()))
		if err != nil {
			h.t.Fatal(err)
		}
		praw, _ := pm.RawBody()
		var img struct {
			MediaType    string                  `json:"mediaType"`
			ArtifactType string                  `json:"artifactType"`
			Config       descriptor.Descriptor   `json:"config"`
			Layers       []descriptor.Descriptor `json:"layers"`
		}
		if err := json.Unmarshal(praw, &img); err != nil {
			h.t.Fatal(err)
		}
		if img.MediaType != mediatype.OCI1Manifest || img.ArtifactType != manifest.ProviderTargetArtifactType ||
			img.Config.Digest != descriptor.EmptyDigest || len(img.Layers) != 1 || img.Layers[0].MediaType != "archive/zip" {
			h.t.Fatalf("bad platform manifest: %s", praw)
		}
		// The blob must be there and be the zip itself.
		br, err := rc.BlobGet(ctx, r, img.Layers[0])
		if err != nil {
			h.t.Fatalf("layer blob: %v", err)
		}
		_ = br.Close()
		layers[key] = img.Layers[0].Digest.Encoded()
	}
	return layers
}

func (h *harness) tags(repo string) []string {
	h.t.Helper()
	r, _ := ref.New(h.reg.Host + "/" + repo)
	tl, err := h.reg.Client().TagList(context.Background(), r)
	if err != nil {
		return nil
	}
	tags, _ := tl.GetTags()
	var versions []string
	for _, t := range tags {
		if !strings.HasPrefix(t, "sha256-") {
			versions = append(versions, t)
		}
	}
	return versions
}

const twoProviders = `
platforms: [linux_amd64, darwin_arm64]
providers:
  - source: hashicorp/null
    versions: "~> 3.2.0"
  - source: hashicorp/random
    versions: "= 3.6.0"
    platforms: [linux_amd64]
`

func addTwoProviders(up *testupstream.Server) {
	for _, v := range []string{"3.1.0", "3.2.0", "3.2.1"} {
		up.AddProvider("hashicorp", "null", v, "linux_amd64", "darwin_arm64", "windows_amd64")
	}
	up.AddProvider("hashicorp", "random", "3.6.0", "linux_amd64", "darwin_arm64")
	up.AddProvider("hashicorp", "random", "3.6.1", "linux_amd64", "darwin_arm64")
}

func TestFirstSyncBuildsTheContractLayout(t *testing.T) {
	h := newHarness(t)
	addTwoProviders(h.up)
	cfg := h.config(twoProviders)

	assertLines(t, states(h.plan(cfg)),
		"hashicorp/null 3.2.0 missing +darwin_arm64,linux_amd64",
		"hashicorp/null 3.2.1 missing +darwin_arm64,linux_amd64",
		"hashicorp/random 3.6.0 missing +linux_amd64",
	)
	if c := h.up.Counts(); c.Download != 0 || c.Zip != 0 {
		t.Fatalf("plan downloaded: %+v", c)
	}
	res := h.mustSync(cfg)
	if got := res.Count(item.Done); got != 3 {
		t.Fatalf("done = %d, want 3", got)
	}
	for _, c := range []struct{ ns, typ, ver string }{{"hashicorp", "null", "3.2.0"}, {"hashicorp", "null", "3.2.1"}, {"hashicorp", "random", "3.6.0"}} {
		layers := h.readIndex("opentofu-providers/"+c.ns+"/"+c.typ, c.ver)
		for platform, dgst := range layers {
			if want := h.up.ZipSHA256(c.ns, c.typ, c.ver, platform); dgst != want {
				t.Errorf("%s/%s %s %s: layer %s, upstream zip sha256 %s", c.ns, c.typ, c.ver, platform, dgst, want)
			}
		}
		if c.typ == "null" && len(layers) != 2 || c.typ == "random" && len(layers) != 1 {
			t.Errorf("%s %s: platforms %v", c.typ, c.ver, layers)
		}
	}
	assertLines(t, h.tags("opentofu-providers/hashicorp/null"), "3.2.0", "3.2.1")
}

func TestSecondSyncDownloadsAndUploadsNothing(t *testing.T) {
	h := newHarness(t)
	addTwoProviders(h.up)
	cfg := h.config(twoProviders)
	h.mustSync(cfg)

	h.up.ResetCounts()
	h.reg.ResetCounts()
	p, res := h.sync(cfg)
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	if p.Pending() != 0 || res.Count(item.Unchanged) != 3 {
		t.Fatalf("second sync not a no-op: %v", states(p))
	}
	uc, rc := h.up.Counts(), h.reg.Counts()
	if uc.Download != 0 || uc.Zip != 0 || uc.SHASums != 0 || uc.Signature != 0 {
		t.Errorf("upstream downloads on a no-op: %+v", uc)
	}
	if uc.Versions != 2 {
		t.Errorf("want one versions call per provider, got %d", uc.Versions)
	}
	if rc.Pushes() != 0 {
		t.Errorf("registry writes on a no-op: %+v", rc)
	}
	// One tag list per provider and one manifest read per matching version.
	if rc.TagList != 2 || rc.ManifestGet+rc.ManifestHead != 3 {
		t.Errorf("registry reads: %+v", rc)
	}
}

func TestAddingAPlatformCopiesOnlyThatPlatform(t *testing.T) {
	h := newHarness(t)
	addTwoProviders(h.up)
	h.mustSync(h.config(twoProviders))

	cfg := h.config(strings.Replace(twoProviders, "[linux_amd64, darwin_arm64]", "[linux_amd64, darwin_arm64, windows_amd64]", 1))
	assertLines(t, states(h.plan(cfg)),
		"hashicorp/null 3.2.0 incomplete +windows_amd64",
		"hashicorp/null 3.2.1 incomplete +windows_amd64",
		"hashicorp/random 3.6.0 complete",
	)
	h.up.ResetCounts()
	h.mustSync(cfg)
	if c := h.up.Counts(); c.Zip != 2 {
		t.Fatalf("want exactly the two windows zips downloaded, got %d", c.Zip)
	}
	layers := h.readIndex("opentofu-providers/hashicorp/null", "3.2.1")
	if len(layers) != 3 || layers["windows_amd64"] != h.up.ZipSHA256("hashicorp", "null", "3.2.1", "windows_amd64") {
		t.Fatalf("index after adding a platform: %v", layers)
	}
}

// TestAddingAPlatformKeepsEntriesOpenTofuSkips: a tag whose index also
// holds entries OpenTofu passes over (another tool's attestation, an
// os.version entry) gains the new platform, and the rewritten index still
// holds those entries verbatim: they were never ours to drop.
func TestAddingAPlatformKeepsEntriesOpenTofuSkips(t *testing.T) {
	h := newHarness(t)
	addTwoProviders(h.up)
	h.mustSync(h.config(twoProviders))

	const repo = "opentofu-providers/hashicorp/null"
	r, raw := h.manifestAt(repo, "3.2.1")
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	entries := doc["manifests"].([]any)
	withOSVersion, foreign := map[string]any{}, map[string]any{}
	for k, v := range entries[0].(map[string]any) {
		withOSVersion[k], foreign[k] = v, v
	}
	withOSVersion["platform"] = map[string]any{"os": "windows", "architecture": "amd64", "os.version": "10.0.17763"}
	foreign["artifactType"] = "application/vnd.example.sbom"
	foreign["annotations"] = map[string]any{"org.example.tool": "scanner"}
	delete(foreign, "platform")
	doc["manifests"] = append(entries, withOSVersion, foreign)
	edited, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	m, err := regmanifest.New(regmanifest.WithRaw(edited))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.reg.Client().ManifestPut(context.Background(), r, m); err != nil {
		t.Fatal(err)
	}

	cfg := h.config(strings.Replace(twoProviders, "[linux_amd64, darwin_arm64]", "[linux_amd64, darwin_arm64, windows_amd64]", 1))
	h.mustSync(cfg)
	_, raw = h.manifestAt(repo, "3.2.1")
	info, err := manifest.ParseProviderIndex(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(info.PlatformKeys(), ","); got != "darwin_arm64,linux_amd64,windows_amd64" {
		t.Fatalf("platforms after adding windows_amd64: %s", got)
	}
	if len(info.Ignored) != 2 || info.Ignored[0].Platform == nil || info.Ignored[0].Platform.OSVersion != "10.0.17763" ||
		info.Ignored[1].ArtifactType != "application/vnd.example.sbom" || info.Ignored[1].Annotations["org.example.tool"] != "scanner" {
		t.Fatalf("the entries OpenTofu skips were not kept:\n%s", raw)
	}
	// And the rewritten tag is complete to the planner.
	assertLines(t, states(h.plan(cfg)),
		"hashicorp/null 3.2.0 complete",
		"hashicorp/null 3.2.1 complete",
		"hashicorp/random 3.6.0 complete",
	)
}

// TestVersionsWithoutPlatformsAskDownloadPerPlatform: when the versions
// answer lists no platforms, the planner asks download (as OpenTofu does)
// for each wanted platform the target lacks. One not offered (404) is
// unavailable with a warning; a version offering none of them is complete
// with a warning, and sync succeeds; a second plan only asks about what
// is still missing.
func TestVersionsWithoutPlatformsAskDownloadPerPlatform(t *testing.T) {
	h := &harness{t: t, up: testupstream.New(t, testupstream.WithoutPlatformsInVersions()), reg: testregistry.New(t)}
	h.registry = h.reg.Host
	h.up.AddProvider("hashicorp", "null", "3.2.0", "linux_amd64", "darwin_arm64")
	h.up.AddProvider("hashicorp", "null", "3.2.1", "linux_amd64")
	h.up.AddProvider("hashicorp", "null", "3.2.2", "freebsd_amd64")
	cfg := h.config(`
platforms: [linux_amd64, darwin_arm64]
providers:
  - source: hashicorp/null
    versions: "~> 3.2.0"
`)
	p := h.plan(cfg)
	assertLines(t, states(p),
		"hashicorp/null 3.2.0 missing +darwin_arm64,linux_amd64",
		"hashicorp/null 3.2.1 missing +linux_amd64",
		"hashicorp/null 3.2.2 complete",
	)
	pp := p.Providers[0]
	if u := pp.Versions[1].Unavailable; len(u) != 1 || u[0] != "darwin_arm64" {
		t.Fatalf("3.2.1 unavailable %v, want [darwin_arm64]", u)
	}
	if u := pp.Versions[2].Unavailable; len(u) != 2 || pp.Versions[2].Detail != "no wanted platform offered upstream" {
		t.Fatalf("3.2.2 unavailable %v detail %q", u, pp.Versions[2].Detail)
	}
	warned := strings.Join(pp.Warnings, "\n")
	if !strings.Contains(warned, "3.2.1: upstream does not offer [darwin_arm64]") || !strings.Contains(warned, "3.2.2: upstream does not offer [darwin_arm64 linux_amd64]") {
		t.Fatalf("warnings: %v", pp.Warnings)
	}

	res := h.mustSync(cfg)
	if n := res.Count(item.Done); n != 2 {
		t.Fatalf("%d versions done, want 2: %+v", n, res.Items)
	}
	if l := h.readIndex("opentofu-providers/hashicorp/null", "3.2.0"); len(l) != 2 {
		t.Fatalf("3.2.0 index %v", l)
	}
	if l := h.readIndex("opentofu-providers/hashicorp/null", "3.2.1"); len(l) != 1 || l["linux_amd64"] == "" {
		t.Fatalf("3.2.1 index %v", l)
	}

	// Mirrored: only 3.2.1's darwin_arm64 and 3.2.2's two platforms are
	// still missing, so a new plan asks download three times.
	h.up.ResetCounts()
	assertLines(t, states(h.plan(cfg)),
		"hashicorp/null 3.2.0 complete",
		"hashicorp/null 3.2.1 complete",
		"hashicorp/null 3.2.2 complete",
	)
	if c := h.up.Counts(); c.Download != 3 {
		t.Fatalf("second plan asked download %d times, want 3", c.Download)
	}
}

// TestPlatformGoneBeforeCopyIsAWarning: a version whose only platform to
// add turns out not offered when it is copied (download answers 404) is
// left unchanged with a warning, not failed: nothing OpenTofu could
// install is missing.
func TestPlatformGoneBeforeCopyIsAWarning(t *testing.T) {
	h := newHarness(t)
	h.up.AddProvider("hashicorp", "null", "3.2.1", "linux_amd64")
	cfg := h.config(`
platforms: [linux_amd64]
providers:
  - source: hashicorp/null
    versions: "= 3.2.1"
`)
	up, tg := h.clients(cfg)
	eng := engine.New(up, tg, tg)
	p := eng.Plan(context.Background(), cfg, tg.String())
	assertLines(t, states(p), "hashicorp/null 3.2.1 missing +linux_amd64")
	h.up.FailNext("/v1/providers/hashicorp/null/3.2.1/download/linux/amd64", 1, 404, "")
	res := eng.Execute(context.Background(), p)
	if err := res.Err(); err != nil {
		t.Fatalf("a platform upstream stopped offering failed the run: %v", err)
	}
	if len(res.Items) != 1 || res.Items[0].State != item.Unchanged || !strings.Contains(strings.Join(res.Items[0].Warnings, "\n"), "no wanted platform is offered upstream; nothing published") {
		t.Fatalf("items: %+v", res.Items)
	}
	tags, err := tg.Tags(context.Background(), "opentofu-providers/hashicorp/null")
	if err != nil && !errors.Is(err, errs.ErrNotFound) {
		t.Fatal(err)
	}
	if len(tags) != 0 {
		t.Fatalf("tags published for nothing: %v", tags)
	}
}

func TestBuildMetadataPrereleasesAndPagination(t *testing.T) {
	h := newHarness(t, testregistry.WithTagPageSize(2))
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0", "1.2.3+ent.1", "1.3.0-beta1", "1.3.0"} {
		h.up.AddProvider("acme", "widget", v, "linux_amd64")
	}
	cfg := h.config(`
platforms: [linux_amd64]
providers:
  - source: acme/widget
    versions: ">= 1.0.0"
`)
	assertLines(t, states(h.plan(cfg)),
		"acme/widget 1.0.0 missing +linux_amd64",
		"acme/widget 1.1.0 missing +linux_amd64",
		"acme/widget 1.2.0 missing +linux_amd64",
		"acme/widget 1.2.3+ent.1 missing +linux_amd64",
		"acme/widget 1.3.0 missing +linux_amd64",
	)
	h.mustSync(cfg)
	assertLines(t, h.tags("opentofu-providers/acme/widget"), "1.0.0", "1.1.0", "1.2.0", "1.2.3_ent.1", "1.3.0")
	// Five tags over pages of two: the planner must follow Link headers to see them all.
	p := h.plan(cfg)
	if p.Pending() != 0 {
		t.Fatalf("pagination lost tags: %v", states(p))
	}
	exact := h.config(`
platforms: [linux_amd64]
providers:
  - source: acme/widget
    versions: "= 1.3.0-beta1"
`)
	assertLines(t, states(h.plan(exact)), "acme/widget 1.3.0-beta1 missing +linux_amd64")
}

func TestVerificationFailuresPublishNothingForThatVersion(t *testing.T) {
	cases := []struct {
		kind testupstream.TamperKind
		want error
		text string
	}{
		{testupstream.TamperZip, upstream.ErrChecksumMismatch, "checksum"},
		{testupstream.TamperShasum, upstream.ErrChecksumMismatch, "SHA256SUMS"},
		{testupstream.TamperSignature, upstream.ErrSignature, "signature"},
		{testupstream.TamperUnknownKey, upstream.ErrSignature, "signature"},
	}
	for _, c := range cases {
		t.Run(c.kind.String(), func(t *testing.T) {
			h := newHarness(t)
			h.up.AddProvider("acme", "widget", "1.0.0", "linux_amd64", "darwin_arm64")
			h.up.AddProvider("acme", "widget", "1.1.0", "linux_amd64", "darwin_arm64")
			h.up.Tamper("acme", "widget", "1.1.0", "darwin_arm64", c.kind)
			cfg := h.config(`
platforms: [linux_amd64, darwin_arm64]
providers:
  - source: acme/widget
    versions: ">= 1.0.0"
`)
			_, res := h.sync(cfg)
			err := res.Err()
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			msg := err.Error()
			for _, part := range []string{"acme/widget", "1.1.0", c.text} {
				if !strings.Contains(msg, part) {
					t.Errorf("error %q does not name %q", msg, part)
				}
			}
			if res.Count(item.Done) != 1 || res.Count(item.Failed) != 1 {
				t.Fatalf("want the good version synced and the bad one failed: %+v", res.Items)
			}
			assertLines(t, h.tags("opentofu-providers/acme/widget"), "1.0.0")
		})
	}
}

func TestUpstreamRateLimitAndOutageAreRetried(t *testing.T) {
	h := newHarness(t)
	h.up.AddProvider("acme", "widget", "1.0.0", "linux_amd64")
	h.up.FailNext("/v1/providers/acme/widget/versions", 1, 429, "1")
	h.up.FailNext("/v1/providers/acme/widget/1.0.0/download", 2, 503, "")
	cfg := h.config(`
platforms: [linux_amd64]
providers:
  - source: acme/widget
    versions: "1.0.0"
`)
	start := time.Now()
	h.mustSync(cfg)
	if time.Since(start) < 900*time.Millisecond {
		t.Errorf("Retry-After: 1 not honoured (took %s)", time.Since(start))
	}
	assertLines(t, h.tags("opentofu-providers/acme/widget"), "1.0.0")
}

func TestSameReleaseSameDigestsInTwoRegistries(t *testing.T) {
	h := newHarness(t)
	addTwoProviders(h.up)
	h.mustSync(h.config(twoProviders))
	other := testregistry.New(t)
	h2 := &harness{t: t, up: h.up, reg: other, registry: other.Host}
	h2.mustSync(h2.config(twoProviders))
	for _, v := range []string{"3.2.0", "3.2.1"} {
		d1 := digestOf(t, h.reg.Client(), h.reg.Host+"/opentofu-providers/hashicorp/null:"+v)
		d2 := digestOf(t, other.Client(), other.Host+"/opentofu-providers/hashicorp/null:"+v)
		if d1 != d2 {
			t.Fatalf("%s: %s != %s", v, d1, d2)
		}
	}
}

func digestOf(t *testing.T, rc *regclient.RegClient, s string) string {
	t.Helper()
	r, _ := ref.New(s)
	m, err := rc.ManifestHead(context.Background(), r, regclient.WithManifestRequireDigest())
	if err != nil {
		t.Fatal(err)
	}
	return m.GetDescriptor().Digest.String()
}

func TestLocalLayoutTarget(t *testing.T) {
	h := newHarness(t)
	addTwoProviders(h.up)
	dir := t.TempDir()
	h.registry = "oci-layout:" + dir
	cfg := h.config(twoProviders)
	h.mustSync(cfg)
	h.up.ResetCounts()
	p, res := h.sync(cfg)
	if res.Err() != nil || p.Pending() != 0 {
		t.Fatalf("second sync into a layout: %v %v", res.Err(), states(p))
	}
	if c := h.up.Counts(); c.Zip != 0 || c.Download != 0 {
		t.Fatalf("no-op into a layout downloaded: %+v", c)
	}
}
