package engine_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/target"
)

// linuxPlan wants the one platform upstream releases.
const linuxPlan = `
platforms: [linux_amd64]
providers:
  - source: acme/widget
    versions: ">= 1.0.0"
`

// provenanceForms reads, per version tag of repo, how its provenance is
// kept: "referrer", "tag" or "none".
func provenanceForms(t *testing.T, h *harness, tg *target.Target, repo string) map[string]string {
	t.Helper()
	ctx := context.Background()
	tags, err := tg.Tags(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, tag := range tags {
		if !manifest.IsStrictVersion(manifest.VersionFromTag(tag)) {
			continue
		}
		_, desc, err := tg.Manifest(ctx, repo, tag)
		if err != nil {
			t.Fatal(err)
		}
		found, err := target.FindProvenance(ctx, tg, repo, desc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case len(found) == 0:
			out[tag] = "none"
		case len(found) > 1:
			t.Fatalf("%s: %d provenance manifests", tag, len(found))
		default:
			raw, _, err := tg.ManifestByDigest(ctx, repo, found[0].Digest)
			if err != nil {
				t.Fatal(err)
			}
			about, detached := manifest.ProvenanceSubject(raw)
			if about != desc.Digest {
				t.Fatalf("%s: provenance about %s, not the index %s", tag, about, desc.Digest)
			}
			out[tag] = "referrer"
			if detached {
				out[tag] = "tag"
				if !slices.Contains(tags, manifest.ProvenanceTag(desc.Digest)) {
					t.Fatalf("%s: detached provenance found, but not under %s: %v", tag, manifest.ProvenanceTag(desc.Digest), tags)
				}
			}
		}
	}
	return out
}

// TestProvenanceAutoBehindRefuseSubject is ECR (405 to a manifest with
// subject, aws/containers-roadmap#2783) with target.provenance left at
// auto: every version is published, provenance goes under
// tofu-provenance-<hex> tags, verify finds and re-checks it, the run
// summary says so, and a second sync does nothing. On distribution and on
// go-containerregistry.
func TestProvenanceAutoBehindRefuseSubject(t *testing.T) {
	for _, impl := range []testregistry.Implementation{testregistry.Distribution, testregistry.GoContainerRegistry} {
		t.Run(impl.String(), func(t *testing.T) {
			h := newHarness(t, testregistry.WithImplementation(impl), testregistry.WithMiddleware(testregistry.RefuseSubject()))
			h.up.AddProvider("acme", "widget", "1.0.0", "linux_amd64", "darwin_arm64")
			h.up.AddProvider("acme", "widget", "1.1.0", "linux_amd64")
			cfg := h.config(widgetPlan)
			_, res := h.sync(cfg)
			if err := res.Err(); err != nil {
				t.Fatalf("sync behind RefuseSubject: %v", err)
			}
			if res.Count(item.Done) != 2 {
				t.Fatalf("%d versions done, want 2: %+v", res.Count(item.Done), res.Items)
			}
			if !strings.Contains(res.Provenance, "tag tofu-provenance-") || !strings.Contains(res.Provenance, testregistry.ECRSubjectRefusedMessage) {
				t.Errorf("run summary provenance %q does not say tags are used and why", res.Provenance)
			}
			warned := 0
			for _, it := range res.Items {
				for _, w := range it.Warnings {
					if strings.Contains(w, "provenance kept under tag tofu-provenance-") {
						warned++
					}
				}
			}
			if warned == 0 {
				t.Errorf("no item says its provenance went under a tag: %+v", res.Items)
			}
			tg := h.target(cfg)
			repo := "opentofu-providers/acme/widget"
			if got := provenanceForms(t, h, tg, repo); got["1.0.0"] != "tag" || got["1.1.0"] != "tag" {
				t.Fatalf("provenance forms %v, want tag for both versions", got)
			}
			rep := h.verify(cfg, false)
			assertFindings(t, "problems", rep.Problems)
			// The signed SHA256SUMS, found under the tag, still explains the platform 1.1.0 lacks.
			assertFindings(t, "warnings", rep.Warnings, "not-released 1.1.0 darwin_arm64")

			h.reg.ResetCounts()
			_, again := h.sync(cfg)
			if err := again.Err(); err != nil || again.Count(item.Unchanged) != 2 {
				t.Fatalf("second sync: %v, %+v", err, again.Items)
			}
			if c := h.reg.Counts(); c.Pushes() != 0 {
				t.Errorf("second sync pushed: %+v", c)
			}
		})
	}
}

// TestProvenanceReferrersStrictFailsWithHint: target.provenance:
// referrers keeps today's rule (the version is not published without its
// referrer), and the error names the refusal and the setting.
func TestProvenanceReferrersStrictFailsWithHint(t *testing.T) {
	h := newHarness(t, testregistry.WithMiddleware(testregistry.RefuseSubject()))
	h.provenance = "referrers"
	h.up.AddProvider("acme", "widget", "1.0.0", "linux_amd64")
	cfg := h.config(widgetPlan)
	_, res := h.sync(cfg)
	err := res.Err()
	if !errors.Is(err, target.ErrSubjectRefused) {
		t.Fatalf("sync error %v, want ErrSubjectRefused", err)
	}
	for _, want := range []string{"405 UNSUPPORTED: " + testregistry.ECRSubjectRefusedMessage, "target.provenance: auto", "doctor", "acme/widget 1.0.0"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	tags, _ := h.target(cfg).Tags(context.Background(), "opentofu-providers/acme/widget")
	if slices.Contains(tags, "1.0.0") {
		t.Fatalf("version tagged although its provenance was refused: %v", tags)
	}
}

// TestProvenanceModesOnARegistryTakingReferrers: tag writes the detached
// form even where referrers work; off writes none and verify does not
// warn about it; auto writes referrers.
func TestProvenanceModesOnARegistryTakingReferrers(t *testing.T) {
	for mode, want := range map[string]string{"tag": "tag", "off": "none", "auto": "referrer", "referrers": "referrer"} {
		t.Run(mode, func(t *testing.T) {
			h := newHarness(t)
			h.provenance = mode
			h.up.AddProvider("acme", "widget", "1.0.0", "linux_amd64")
			cfg := h.config(linuxPlan)
			res := h.mustSync(cfg)
			if got := provenanceForms(t, h, h.target(cfg), "opentofu-providers/acme/widget"); got["1.0.0"] != want {
				t.Fatalf("provenance %v, want %s", got, want)
			}
			if !strings.Contains(res.Provenance, "("+mode+")") && !strings.Contains(res.Provenance, "target.provenance: "+mode) {
				t.Errorf("run summary provenance %q does not name mode %s", res.Provenance, mode)
			}
			rep := h.verify(cfg, false)
			assertFindings(t, "problems", rep.Problems)
			assertFindings(t, "warnings", rep.Warnings)
		})
	}
}

// TestProvenanceRefusedNeverBlocks: a media type allowlist with OpenTofu's
// types but not ours (Quay without our types in ALLOWED_OCI_ARTIFACT_TYPES)
// refuses provenance in both forms; auto still publishes every version,
// each with a warning naming the refusal and the allowlist.
func TestProvenanceRefusedNeverBlocks(t *testing.T) {
	allow := &testregistry.MediaTypeAllowlist{Allowed: []string{manifest.ZipLayerMediaType,
		manifest.ProviderIndexArtifactType, manifest.ProviderTargetArtifactType}}
	h := newHarness(t, testregistry.WithMiddleware(allow.Middleware()))
	h.up.AddProvider("acme", "widget", "1.0.0", "linux_amd64")
	h.up.AddProvider("acme", "widget", "1.1.0", "linux_amd64")
	cfg := h.config(linuxPlan)
	_, res := h.sync(cfg)
	if err := res.Err(); err != nil {
		t.Fatalf("sync: %v", err)
	}
	for _, it := range res.Items {
		if !slices.ContainsFunc(it.Warnings, func(w string) bool { return strings.Contains(w, "provenance not stored") }) {
			t.Errorf("%s %s: no warning that provenance was not stored: %v", it.Address, it.Version, it.Warnings)
		}
	}
	if !strings.Contains(res.Provenance, "none stored") || !strings.Contains(res.Provenance, "MANIFEST_INVALID") {
		t.Errorf("run summary provenance %q", res.Provenance)
	}
	if got := provenanceForms(t, h, h.target(cfg), "opentofu-providers/acme/widget"); got["1.0.0"] != "none" || got["1.1.0"] != "none" {
		t.Fatalf("provenance %v", got)
	}
	rep := h.verify(cfg, false)
	assertFindings(t, "problems", rep.Problems)
	assertFindings(t, "warnings", rep.Warnings, "no-provenance 1.0.0", "no-provenance 1.1.0")
}
