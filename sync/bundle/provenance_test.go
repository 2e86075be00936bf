package bundle_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testpgp"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/bundle"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/provenance"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/target"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/verify"
)

// TestImportIntoRegistryRefusingSubject: the bundle carries provenance as
// referrers; the inside registry refuses subject (ECR,
// aws/containers-roadmap#2783), so import writes each in the detached
// form under tofu-provenance-<hex>, after the version verified, and
// verify and the inventory find it there. A new export against that
// inventory has nothing to carry.
func TestImportIntoRegistryRefusingSubject(t *testing.T) {
	w := newWorld(t)
	_, data := w.export(w.config(nil, defaultTemplate, planAB), nil)
	inside := testregistry.New(t, testregistry.WithMiddleware(testregistry.RefuseSubject()))
	cfg := w.config(inside, defaultTemplate, planAB)
	res, err := importBytes(t, cfg, data)
	if err != nil || res.Count(item.Done) != 3 {
		t.Fatalf("import: %v %+v", err, res.Items)
	}
	if !strings.Contains(res.Provenance, "tag tofu-provenance-") {
		t.Errorf("import summary provenance %q", res.Provenance)
	}
	tags := tagDigests(t, inside, repos...)
	inv := w.inventory(cfg)
	n := 0
	for _, e := range inv.Artifacts {
		for _, v := range e.Versions {
			n++
			if v.Provenance == nil || v.Provenance.Form != target.FormTag {
				t.Errorf("%s %s: inventory provenance %+v, want the tag form", e.Address, v.Version, v.Provenance)
				continue
			}
			want := manifest.ProvenanceTag(v.Digest) + " " + v.Provenance.Digest.String()
			if !slices.Contains(tags, want) {
				t.Errorf("%s %s: no tag %q among %v", e.Address, v.Version, want, tags)
			}
		}
	}
	if n != 3 {
		t.Fatalf("inventory has %d versions, want 3", n)
	}
	rep, err := verify.Run(context.Background(), cfg, openTarget(t, cfg))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 0 {
		t.Fatalf("verify problems: %v", rep.Problems)
	}
	for _, p := range rep.Warnings {
		if p.Code == verify.WarningNoProvenance {
			t.Errorf("verify did not find provenance under the tag: %v", p)
		}
	}
	exp, _ := w.export(w.config(nil, defaultTemplate, planAB), inv)
	if len(exp.Metadata.Artifacts) != 0 {
		t.Errorf("export against the inventory carries %d artifacts, want none", len(exp.Metadata.Artifacts))
	}
}

// TestImportDefersTagStoredProvenance: a version whose provenance does
// not verify inside (the plan pins another key) gets nothing: no version
// tag and no tofu-provenance tag either, although the inside registry
// would take the tag form at once.
func TestImportDefersTagStoredProvenance(t *testing.T) {
	w := newWorld(t)
	_, data := w.export(w.config(nil, defaultTemplate, planAB), nil)
	inside := testregistry.New(t, testregistry.WithMiddleware(testregistry.RefuseSubject()))
	cfg := w.config(inside, defaultTemplate, planAB)
	other := testpgp.New(t, "someone else", "")
	o := signed(t, data, bundle.ImportOptions{SpoolDir: t.TempDir(),
		Policy: provenance.Policy{PinnedKeys: map[string][]string{"acme": {other.PublicArmored}}}})
	res, err := bundle.Import(context.Background(), cfg, openTarget(t, cfg), bytes.NewReader(data), o)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	if res.Count(item.Failed) != 3 {
		t.Fatalf("want 3 failures (provenance signed by an unpinned key): %+v", res.Items)
	}
	if tags := tagDigests(t, inside, repos...); len(tags) != 0 {
		t.Fatalf("tags after refused versions: %v", tags)
	}
}
