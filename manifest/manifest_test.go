package manifest

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/mediatype"
	"github.com/regclient/regclient/types/platform"
)

func zipDesc(content string) descriptor.Descriptor {
	return descriptor.Descriptor{MediaType: ZipLayerMediaType, Digest: digest.SHA256.FromString(content), Size: int64(len(content))}
}

func buildIndex(t *testing.T, keys ...string) Artifact {
	t.Helper()
	var ps []PlatformManifest
	for _, k := range keys {
		os, arch, _ := strings.Cut(k, "_")
		m, err := ProviderTarget(zipDesc(k), "terraform-provider-x_1.0.0_"+k+".zip")
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, PlatformManifest{OS: os, Arch: arch, Manifest: m.Descriptor})
	}
	idx, err := ProviderIndex(ps)
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

func TestTag(t *testing.T) {
	for in, want := range map[string]string{"1.2.3": "1.2.3", "1.2.3+ent.1": "1.2.3_ent.1", "1.0.0-beta.1": "1.0.0-beta.1"} {
		if got := Tag(in); got != want {
			t.Errorf("Tag(%q) = %q, want %q", in, got, want)
		}
		if got := VersionFromTag(want); got != in {
			t.Errorf("VersionFromTag(%q) = %q, want %q", want, got, in)
		}
	}
}

func TestProviderTargetContract(t *testing.T) {
	z := zipDesc("zip bytes")
	a, err := ProviderTarget(z, "terraform-provider-x_1.0.0_linux_amd64.zip")
	if err != nil {
		t.Fatal(err)
	}
	if a.Descriptor.Digest != digest.SHA256.FromBytes(a.Raw) || a.Descriptor.Size != int64(len(a.Raw)) {
		t.Fatal("descriptor does not describe raw bytes")
	}
	var m map[string]any
	if err := json.Unmarshal(a.Raw, &m); err != nil {
		t.Fatal(err)
	}
	if m["mediaType"] != mediatype.OCI1Manifest || m["artifactType"] != ProviderTargetArtifactType {
		t.Fatalf("wrong types: %s", a.Raw)
	}
	cfg := m["config"].(map[string]any)
	if cfg["mediaType"] != mediatype.OCI1Empty || cfg["digest"] != "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a" || cfg["size"] != 2.0 {
		t.Fatalf("config is not the empty descriptor: %v", cfg)
	}
	layers := m["layers"].([]any)
	if len(layers) != 1 {
		t.Fatalf("want one layer, got %d", len(layers))
	}
	l := layers[0].(map[string]any)
	if l["mediaType"] != "archive/zip" || l["digest"] != z.Digest.String() {
		t.Fatalf("layer is not the zip: %v", l)
	}
	got, err := ProviderTargetLayer(a.Raw)
	if err != nil || got.Digest != z.Digest {
		t.Fatalf("ProviderTargetLayer = %v, %v", got, err)
	}
}

func TestProviderIndexDeterministicAndSorted(t *testing.T) {
	a := buildIndex(t, "linux_amd64", "darwin_arm64", "windows_amd64")
	b := buildIndex(t, "windows_amd64", "linux_amd64", "darwin_arm64")
	if a.Descriptor.Digest != b.Descriptor.Digest || string(a.Raw) != string(b.Raw) {
		t.Fatal("index depends on input order")
	}
	var idx struct {
		MediaType    string `json:"mediaType"`
		ArtifactType string `json:"artifactType"`
		Manifests    []struct {
			MediaType    string            `json:"mediaType"`
			ArtifactType string            `json:"artifactType"`
			Platform     map[string]string `json:"platform"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(a.Raw, &idx); err != nil {
		t.Fatal(err)
	}
	if idx.MediaType != mediatype.OCI1ManifestList || idx.ArtifactType != ProviderIndexArtifactType {
		t.Fatalf("wrong index types: %s", a.Raw)
	}
	var order []string
	for _, m := range idx.Manifests {
		if m.MediaType != mediatype.OCI1Manifest || m.ArtifactType != ProviderTargetArtifactType {
			t.Fatalf("bad entry %+v", m)
		}
		if len(m.Platform) != 2 {
			t.Fatalf("platform must hold only os and architecture: %v", m.Platform)
		}
		order = append(order, m.Platform["os"]+"_"+m.Platform["architecture"])
	}
	if strings.Join(order, ",") != "darwin_arm64,linux_amd64,windows_amd64" {
		t.Fatalf("entries not sorted: %v", order)
	}
	info, err := ParseProviderIndex(a.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(info.PlatformKeys(), ",") != strings.Join(order, ",") {
		t.Fatalf("parse lost platforms: %v", info.PlatformKeys())
	}
	if _, err := ProviderIndex(nil); !errors.Is(err, ErrInvalidProviderIndex) {
		t.Fatalf("empty index: %v", err)
	}
}

// TestParseProviderIndexIgnoresWhatOpenTofuSkips: entries OpenTofu passes
// over for every platform (other artifact types, os.version, no os or
// architecture) leave a tag it can install from, so they are no conflict;
// they are kept for a rewrite of the index.
func TestParseProviderIndexIgnoresWhatOpenTofuSkips(t *testing.T) {
	d := `"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` + strings.Repeat("a", 64) + `","size":10`
	target := `"artifactType":"application/vnd.opentofu.provider-target"`
	raw := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","artifactType":"application/vnd.opentofu.provider","manifests":[` +
		`{` + d + `,` + target + `,"platform":{"os":"linux","architecture":"amd64"}},` +
		`{` + d + `,` + target + `,"platform":{"os":"windows","architecture":"amd64","os.version":"10.0.17763"}},` +
		`{` + d + `,` + target + `,"platform":{"os":"","architecture":"arm64"}},` +
		`{` + d + `,"artifactType":"application/vnd.example.sbom","platform":{"os":"linux","architecture":"amd64"}},` +
		`{` + d + `}` +
		`]}`
	info, err := ParseProviderIndex([]byte(raw))
	if err != nil {
		t.Fatalf("an index OpenTofu installs linux_amd64 from was refused: %v", err)
	}
	if got := info.PlatformKeys(); len(got) != 1 || got[0] != "linux_amd64" {
		t.Fatalf("platforms %v, want [linux_amd64]", got)
	}
	if len(info.Ignored) != 4 || info.Ignored[0].Platform == nil || info.Ignored[0].Platform.OSVersion != "10.0.17763" || info.Ignored[2].ArtifactType != "application/vnd.example.sbom" {
		t.Fatalf("ignored entries %+v, want the four skipped ones verbatim in order", info.Ignored)
	}
}

// TestProviderIndexKeepingRoundTrips: an index rebuilt with the entries
// OpenTofu skipped keeps them verbatim after the platforms, parses back to
// the same platforms and ignored entries, and refuses to "keep" an entry
// that is really a platform (which would let a stale one ride along).
func TestProviderIndexKeepingRoundTrips(t *testing.T) {
	d := `"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` + strings.Repeat("a", 64) + `","size":10`
	target := `"artifactType":"application/vnd.opentofu.provider-target"`
	raw := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","artifactType":"application/vnd.opentofu.provider","manifests":[` +
		`{` + d + `,` + target + `,"platform":{"os":"linux","architecture":"amd64"}},` +
		`{` + d + `,` + target + `,"platform":{"os":"windows","architecture":"amd64","os.version":"10.0.17763"}},` +
		`{` + d + `,"artifactType":"application/vnd.example.sbom","annotations":{"org.example":"x"}}` +
		`]}`
	old, err := ParseProviderIndex([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	platforms := []PlatformManifest{old.Platforms["linux_amd64"]}
	m, err := ProviderTarget(zipDesc("darwin_arm64"), "terraform-provider-x_1.0.0_darwin_arm64.zip")
	if err != nil {
		t.Fatal(err)
	}
	platforms = append(platforms, PlatformManifest{OS: "darwin", Arch: "arm64", Manifest: m.Descriptor})
	a, err := ProviderIndexKeeping(platforms, old.Ignored)
	if err != nil {
		t.Fatal(err)
	}
	info, err := ParseProviderIndex(a.Raw)
	if err != nil {
		t.Fatalf("rebuilt index does not parse: %v\n%s", err, a.Raw)
	}
	if got := strings.Join(info.PlatformKeys(), ","); got != "darwin_arm64,linux_amd64" {
		t.Fatalf("platforms %s", got)
	}
	if len(info.Ignored) != 2 || info.Ignored[0].Platform.OSVersion != "10.0.17763" ||
		info.Ignored[1].ArtifactType != "application/vnd.example.sbom" || info.Ignored[1].Annotations["org.example"] != "x" {
		t.Fatalf("ignored entries not kept verbatim in order: %+v\n%s", info.Ignored, a.Raw)
	}
	plain, err := ProviderIndex(platforms)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := ProviderIndexKeeping(platforms, nil); again.Descriptor.Digest != plain.Descriptor.Digest {
		t.Fatalf("nothing kept must be ProviderIndex byte for byte")
	}
	real := old.Platforms["linux_amd64"].Manifest
	real.Platform = &platform.Platform{OS: "linux", Architecture: "arm64"}
	if _, err := ProviderIndexKeeping(platforms, []descriptor.Descriptor{real}); !errors.Is(err, ErrInvalidProviderIndex) {
		t.Fatalf("keeping a real platform entry: %v", err)
	}
}

func TestParseProviderIndexRejects(t *testing.T) {
	valid := buildIndex(t, "linux_amd64")
	entry := `{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` + strings.Repeat("a", 64) + `","size":10,"artifactType":"application/vnd.opentofu.provider-target","platform":{"os":"linux","architecture":"amd64"}}`
	cases := []struct {
		name string
		raw  string
		want error
	}{
		{"image manifest", `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}`, ErrNotProviderIndex},
		{"container index", `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`, ErrNotProviderIndex},
		{"not json", `<html>`, ErrNotProviderIndex},
		{"duplicate platform", `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","artifactType":"application/vnd.opentofu.provider","manifests":[` + entry + `,` + entry + `]}`, ErrInvalidProviderIndex},
		{"no platform", `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","artifactType":"application/vnd.opentofu.provider","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` + strings.Repeat("a", 64) + `","size":1,"artifactType":"application/vnd.opentofu.provider-target"}]}`, ErrInvalidProviderIndex},
		{"docker list entry", strings.Replace(string(valid.Raw), `"mediaType":"application/vnd.oci.image.manifest.v1+json","digest"`, `"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest"`, 1), ErrInvalidProviderIndex},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := ParseProviderIndex([]byte(c.raw)); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

func TestModulePackage(t *testing.T) {
	z := zipDesc("module")
	a, err := ModulePackage(z)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ModulePackageLayer(a.Raw)
	if err != nil || l.Digest != z.Digest {
		t.Fatalf("ModulePackageLayer = %v, %v", l, err)
	}
	p, _ := ProviderTarget(z, "")
	if _, err := ModulePackageLayer(p.Raw); !errors.Is(err, ErrNotModulePackage) {
		t.Fatalf("provider manifest accepted as module: %v", err)
	}
	idx := buildIndex(t, "linux_amd64")
	if _, err := ModulePackageLayer(idx.Raw); !errors.Is(err, ErrNotModulePackage) {
		t.Fatalf("index accepted as module: %v", err)
	}
}

func TestProvenanceRefersToIndex(t *testing.T) {
	idx := buildIndex(t, "linux_amd64")
	sums := zipDesc("sums")
	sums.MediaType = SHA256SUMSMediaType
	a, err := Provenance(idx.Descriptor, sums, descriptor.Descriptor{}, descriptor.Descriptor{})
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		ArtifactType string                  `json:"artifactType"`
		Subject      descriptor.Descriptor   `json:"subject"`
		Layers       []descriptor.Descriptor `json:"layers"`
	}
	if err := json.Unmarshal(a.Raw, &m); err != nil {
		t.Fatal(err)
	}
	if m.ArtifactType != ProvenanceArtifactType || m.Subject.Digest != idx.Descriptor.Digest || len(m.Layers) != 1 {
		t.Fatalf("bad provenance manifest: %s", a.Raw)
	}
}

func TestProvenanceFormsRoundTrip(t *testing.T) {
	idx := buildIndex(t, "linux_amd64")
	sums, sig, key := zipDesc("sums"), zipDesc("sig"), zipDesc("key")
	sums.MediaType, sig.MediaType, key.MediaType = SHA256SUMSMediaType, SignatureMediaType, PublicKeyMediaType
	sums.Annotations = map[string]string{TitleAnnotation: "SHA256SUMS"}
	ref, err := Provenance(idx.Descriptor, sums, sig, key)
	if err != nil {
		t.Fatal(err)
	}
	det, err := DetachedProvenance(idx.Descriptor.Digest, sums, sig, key)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(det.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if p.Subject != nil || p.ArtifactType != ProvenanceArtifactType || p.Annotations[ProvenanceSubjectAnnotation] != idx.Descriptor.Digest.String() || len(p.Layers) != 3 {
		t.Fatalf("detached provenance: %s", det.Raw)
	}
	if subj, d := ProvenanceSubject(det.Raw); subj != idx.Descriptor.Digest || !d {
		t.Fatalf("ProvenanceSubject(detached) = %s, %v", subj, d)
	}
	if subj, d := ProvenanceSubject(ref.Raw); subj != idx.Descriptor.Digest || d {
		t.Fatalf("ProvenanceSubject(referrer) = %s, %v", subj, d)
	}
	// Each form rebuilds the other byte for byte, and itself unchanged.
	for name, raw := range map[string][]byte{"referrer": ref.Raw, "detached": det.Raw} {
		r, d, err := ProvenanceForms(raw, idx.Descriptor)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if string(r.Raw) != string(ref.Raw) || r.Descriptor.Digest != ref.Descriptor.Digest {
			t.Errorf("%s: referrer form\n%s\nwant\n%s", name, r.Raw, ref.Raw)
		}
		if string(d.Raw) != string(det.Raw) || d.Descriptor.Digest != det.Descriptor.Digest {
			t.Errorf("%s: detached form\n%s\nwant\n%s", name, d.Raw, det.Raw)
		}
	}
	other := buildIndex(t, "darwin_arm64")
	if _, _, err := ProvenanceForms(det.Raw, other.Descriptor); err == nil {
		t.Fatal("a provenance about another index was rebuilt for this one")
	}
	tag := ProvenanceTag(idx.Descriptor.Digest)
	if len(tag) != 80 || IsStrictVersion(VersionFromTag(tag)) {
		t.Fatalf("provenance tag %q: %d characters, or a version", tag, len(tag))
	}
}
