package bundle_test

// The hostile-bundle suite: each test starts from a real export and does
// what an attacker on the way (or a compromised connected side) would do
// to it, then asserts the refusal, its message, and that the registry
// holds no new tag afterwards, not even a referrers fallback tag.

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient/types/descriptor"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testupstream"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/bundle"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/provenance"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/upstream"
)

// bundleParts is a bundle taken apart by digest, to forge from.
type bundleParts struct {
	meta  *bundle.Metadata
	blobs map[digest.Digest][]byte
}

func takeApart(t *testing.T, data []byte) *bundleParts {
	t.Helper()
	entries := tarEntries(t, data)
	p := &bundleParts{meta: metadataOf(t, entries), blobs: map[digest.Digest][]byte{}}
	for _, e := range entries {
		if enc, ok := strings.CutPrefix(e.hdr.Name, "blobs/sha256/"); ok {
			p.blobs[digest.NewDigestFromEncoded(digest.SHA256, enc)] = e.body
		}
	}
	return p
}

func (p *bundleParts) artifact(t *testing.T, address, version string) *bundle.Artifact {
	t.Helper()
	for i := range p.meta.Artifacts {
		if a := &p.meta.Artifacts[i]; a.Address == address && a.Version == version {
			return a
		}
	}
	t.Fatalf("no %s %s in the bundle", address, version)
	return nil
}

// add stores a blob and returns its reference (inside the bundle).
func (p *bundleParts) add(data []byte, mediaType string, isManifest bool) bundle.BlobRef {
	d := digest.SHA256.FromBytes(data)
	p.blobs[d] = data
	return bundle.BlobRef{Digest: d, Size: int64(len(data)), MediaType: mediaType, Manifest: isManifest, Inside: true}
}

// tar writes the bundle back: metadata, then every artifact's blobs in
// its push order, each once (with the metadata as given, signed or not).
func (p *bundleParts) tar(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	write := func(name string, body []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write(body)
	}
	write(bundle.MetadataFile, mustJSON(t, p.meta))
	write("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	seen := map[digest.Digest]bool{}
	for _, a := range p.meta.Artifacts {
		for _, b := range a.Blobs {
			if !b.Inside || seen[b.Digest] {
				continue
			}
			seen[b.Digest] = true
			body, ok := p.blobs[b.Digest]
			if !ok {
				t.Fatalf("forged bundle lacks %s", b.Digest)
			}
			write("blobs/sha256/"+b.Digest.Encoded(), body)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// forgery says how to rebuild one provider version of a real bundle.
type forgery struct {
	address, version string
	// zips replaces platform packages ("linux_amd64" -> new zip bytes).
	zips map[string][]byte
	// platform manifests taken from elsewhere (already in the target),
	// not carried: platform -> descriptor of the manifest.
	outside map[string]descriptor.Descriptor
	// signer signs the rewritten SHA256SUMS and its public key goes in the
	// key layer; nil keeps the original signature and key.
	signer *openpgp.Entity
	// strip drops the signature and key layers; dropSignature only the
	// signature.
	strip, dropSignature bool
	// extraKey adds a second key layer beside the first.
	extraKey string
}

// forge rebuilds the artifact as f says, the way an attacker with the
// bundle in hand would: new zips, new platform manifests, a new index, a
// SHA256SUMS that lists the new zips, signed (or not) as f says, and a
// provenance referring to the new index.
func (p *bundleParts) forge(t *testing.T, f forgery) *bundle.Artifact {
	t.Helper()
	a := p.artifact(t, f.address, f.version)
	info, err := manifest.ParseProviderIndex(p.blobs[a.Manifest.Digest])
	if err != nil {
		t.Fatal(err)
	}
	provRaw := p.blobs[a.Provenance.Digest]
	pm, err := manifest.Parse(provRaw)
	if err != nil {
		t.Fatal(err)
	}
	var sums, sig []byte
	var key string
	for _, l := range pm.Layers {
		switch l.MediaType {
		case manifest.SHA256SUMSMediaType:
			sums = p.blobs[l.Digest]
		case manifest.SignatureMediaType:
			sig = p.blobs[l.Digest]
		case manifest.PublicKeyMediaType:
			key = string(p.blobs[l.Digest])
		}
	}
	var blobs []bundle.BlobRef
	config := manifest.EmptyConfig()
	blobs = append(blobs, p.add([]byte("{}"), config.MediaType, false))
	var entries []manifest.PlatformManifest
	for _, key := range info.PlatformKeys() {
		pmd := info.Platforms[key]
		if d, ok := f.outside[key]; ok {
			entries = append(entries, manifest.PlatformManifest{OS: pmd.OS, Arch: pmd.Arch, Manifest: d})
			blobs = append(blobs, bundle.BlobRef{Digest: d.Digest, Size: d.Size, MediaType: d.MediaType, Manifest: true})
			continue
		}
		layer, err := manifest.ProviderTargetLayer(p.blobs[pmd.Manifest.Digest])
		if err != nil {
			t.Fatal(err)
		}
		zipData := p.blobs[layer.Digest]
		if z, ok := f.zips[key]; ok {
			old := hex.EncodeToString(sha256Of(zipData))
			zipData = z
			sums = []byte(strings.ReplaceAll(string(sums), old, hex.EncodeToString(sha256Of(z))))
		}
		zref := p.add(zipData, manifest.ZipLayerMediaType, false)
		target, err := manifest.ProviderTarget(descriptor.Descriptor{MediaType: manifest.ZipLayerMediaType, Digest: zref.Digest, Size: zref.Size}, layer.Annotations[manifest.TitleAnnotation])
		if err != nil {
			t.Fatal(err)
		}
		blobs = append(blobs, zref, p.add(target.Raw, target.Descriptor.MediaType, true))
		entries = append(entries, manifest.PlatformManifest{OS: pmd.OS, Arch: pmd.Arch, Manifest: target.Descriptor})
	}
	index, err := manifest.ProviderIndex(entries)
	if err != nil {
		t.Fatal(err)
	}
	blobs = append(blobs, p.add(index.Raw, index.Descriptor.MediaType, true))
	if f.signer != nil {
		var buf bytes.Buffer
		if err := openpgp.DetachSign(&buf, f.signer, bytes.NewReader(sums), nil); err != nil {
			t.Fatal(err)
		}
		sig, key = buf.Bytes(), armoredPublic(t, f.signer)
	}
	if f.strip {
		sig, key = nil, ""
	}
	if f.dropSignature {
		sig = nil
	}
	art, layers, err := provenance.Artifact(index.Descriptor, &upstream.Provenance{SHA256SUMS: sums, Signature: sig, SigningKey: key})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		blobs = append(blobs, p.add(l.Data, l.Descriptor.MediaType, false))
	}
	if f.extraKey != "" {
		// A second key layer in the provenance manifest.
		var m map[string]any
		_ = json.Unmarshal(art.Raw, &m)
		extra := p.add([]byte(f.extraKey), manifest.PublicKeyMediaType, false)
		m["layers"] = append(m["layers"].([]any), map[string]any{"mediaType": extra.MediaType, "digest": extra.Digest, "size": extra.Size})
		art.Raw = mustJSON(t, m)
		art.Descriptor.Digest, art.Descriptor.Size = digest.SHA256.FromBytes(art.Raw), int64(len(art.Raw))
		blobs = append(blobs, extra)
	}
	provRef := p.add(art.Raw, art.Descriptor.MediaType, true)
	blobs = append(blobs, provRef)
	a.Manifest = index.Descriptor
	pd := descriptor.Descriptor{MediaType: art.Descriptor.MediaType, Digest: provRef.Digest, Size: provRef.Size, ArtifactType: manifest.ProvenanceArtifactType}
	a.Provenance = &pd
	a.Blobs = blobs
	return a
}

func sha256Of(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

func armoredPublic(t *testing.T, e *openpgp.Entity) string {
	t.Helper()
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	return buf.String()
}

func newEntity(t *testing.T, name string) *openpgp.Entity {
	t.Helper()
	e, err := openpgp.NewEntity(name, "", name+"@example.test", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// hostile is a real signed export of planAB and an empty inside registry.
type hostile struct {
	w    *world
	good []byte
	reg  *testregistry.Registry
	cfg  *config.Config
}

func newHostile(t *testing.T) *hostile {
	w := newWorld(t)
	_, good := w.export(w.config(nil, defaultTemplate, planAB), nil)
	h := &hostile{w: w, good: good, reg: testregistry.New(t)}
	h.cfg = w.config(h.reg, defaultTemplate, planAB)
	return h
}

// pinned is the inside's trust.provider_keys: the upstream's real key for acme.
func (h *hostile) pinned() provenance.Policy {
	return provenance.Policy{PinnedKeys: map[string][]string{"acme": {h.w.up.ArmoredPublicKey}}}
}

// importAs imports data signed by the connected side's bundle key (the
// attacker controls the connected side) or unsigned (an attacker on the
// way cannot sign), into the inside registry.
func (h *hostile) importAs(t *testing.T, data []byte, sign bool, o bundle.ImportOptions) (*item.Run, error) {
	t.Helper()
	o.SpoolDir = t.TempDir()
	if sign {
		o = signed(t, data, o)
	} else {
		o.BundleKeys = openpgp.EntityList{bundleSigner()}
	}
	return bundle.Import(context.Background(), h.cfg, openTarget(t, h.cfg), bytes.NewReader(data), o)
}

// noNewTags asserts the registry holds no tag at all, fallback tags included.
func (h *hostile) noNewTags(t *testing.T, allowed ...string) {
	t.Helper()
	for _, tag := range tagDigests(t, h.reg, append(repos, "opentofu-providers/hashicorp/aws")...) {
		ok := false
		for _, a := range allowed {
			ok = ok || strings.HasPrefix(tag, a+" ")
		}
		if !ok {
			t.Errorf("the registry holds tag %s after a refused import", tag)
		}
	}
}

// refusedItem asserts the artifact failed with want, naming all of names.
func refusedItem(t *testing.T, res *item.Run, err error, want error, names ...string) {
	t.Helper()
	if err == nil && res != nil {
		err = res.Err()
	}
	if !errors.Is(err, want) {
		t.Fatalf("got %v, want %v", err, want)
	}
	for _, n := range names {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("the refusal does not say %q: %v", n, err)
		}
	}
}

const widget = "registry.opentofu.org/acme/widget"

func attackerZip() []byte {
	return testupstream.BuildProviderZip("terraform-provider-widget_v1.0.0", []byte("#!/bin/sh\necho owned\n"))
}

// An attacker swaps a zip, rewrites SHA256SUMS, signs it with their own
// key and puts that key in the bundle's key layer.
func TestHostileAttackerKey(t *testing.T) {
	h := newHostile(t)
	p := takeApart(t, h.good)
	p.forge(t, forgery{address: widget, version: "1.0.0", zips: map[string][]byte{"linux_amd64": attackerZip()}, signer: newEntity(t, "attacker")})
	forged := p.tar(t)

	t.Run("unsigned bundle", func(t *testing.T) {
		_, err := h.importAs(t, forged, false, bundle.ImportOptions{})
		refusedItem(t, nil, err, bundle.ErrUnsignedBundle, "no signature", "--allow-unsigned-bundle")
		h.noNewTags(t)
		if n := h.reg.Counts().Pushes(); n != 0 {
			t.Fatalf("an unsigned bundle pushed %d times", n)
		}
	})
	t.Run("unsigned bundle allowed, nothing pinned: the carried key is not trusted", func(t *testing.T) {
		res, err := h.importAs(t, forged, false, bundle.ImportOptions{AllowUnsignedBundle: true})
		if err != nil {
			t.Fatal(err)
		}
		refusedItem(t, res, nil, provenance.ErrProvenance, widget+" 1.0.0", "no trusted key")
		h.noNewTags(t)
	})
	t.Run("compromised connected side signs the bundle, key pinned inside", func(t *testing.T) {
		res, err := h.importAs(t, forged, true, bundle.ImportOptions{Policy: h.pinned()})
		if err != nil {
			t.Fatal(err)
		}
		refusedItem(t, res, nil, provenance.ErrProvenance, widget+" 1.0.0", "pinned")
		h.noNewTags(t, "1.1.0", "2.0.0") // the untouched versions still import
	})
	t.Run("the attacker's key beside the real one", func(t *testing.T) {
		// With the signature: four provenance blobs, more than a release has.
		p := takeApart(t, h.good)
		p.forge(t, forgery{address: widget, version: "1.0.0", zips: map[string][]byte{"linux_amd64": attackerZip()},
			signer: newEntity(t, "attacker2"), extraKey: h.w.up.ArmoredPublicKey})
		_, err := h.importAs(t, p.tar(t), true, bundle.ImportOptions{})
		refusedItem(t, nil, err, bundle.ErrFormat, widget+" 1.0.0", "provenance blobs")
		// Two keys and no signature: three blobs, but two key layers.
		p = takeApart(t, h.good)
		attacker := newEntity(t, "attacker3")
		p.forge(t, forgery{address: widget, version: "1.0.0", zips: map[string][]byte{"linux_amd64": attackerZip()},
			signer: attacker, extraKey: armoredPublic(t, attacker), dropSignature: true})
		res, err := h.importAs(t, p.tar(t), true, bundle.ImportOptions{})
		if err != nil {
			t.Fatal(err)
		}
		refusedItem(t, res, nil, provenance.ErrProvenance, "more than one application/pgp-keys layer")
		h.noNewTags(t, "1.1.0", "2.0.0")
	})
}

// Dropping the signature and key layers used to switch on OpenTofu's
// unsigned exception for registry.opentofu.org.
func TestHostileStrippedSignature(t *testing.T) {
	h := newHostile(t)
	p := takeApart(t, h.good)
	p.forge(t, forgery{address: widget, version: "1.0.0", zips: map[string][]byte{"linux_amd64": attackerZip()}, strip: true})
	forged := p.tar(t)
	res, err := h.importAs(t, forged, true, bundle.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	refusedItem(t, res, nil, provenance.ErrProvenance, widget, "not allowed unsigned", "trust.allow_unsigned_providers")
	h.noNewTags(t, "1.1.0", "2.0.0")

	// Only the operator can allow it, by name.
	res, err = h.importAs(t, forged, true, bundle.ImportOptions{Policy: provenance.Policy{AllowUnsigned: []string{widget}}})
	if err != nil || res.Err() != nil {
		t.Fatalf("allowed unsigned: %v %v", err, res.Err())
	}
}

// Two steps with the real key: a refused import leaves an untagged
// attacker manifest; a second bundle points the index at it, not carried.
func TestHostileTwoStep(t *testing.T) {
	h := newHostile(t)
	p := takeApart(t, h.good)
	first := p.forge(t, forgery{address: widget, version: "1.0.0", zips: map[string][]byte{"linux_amd64": attackerZip()}, signer: newEntity(t, "attacker")})
	var attackerManifest descriptor.Descriptor
	for _, b := range first.Blobs {
		if b.Manifest && b.MediaType == "application/vnd.oci.image.manifest.v1+json" {
			raw := p.blobs[b.Digest]
			if l, err := manifest.ProviderTargetLayer(raw); err == nil && l.Annotations[manifest.TitleAnnotation] == "terraform-provider-widget_1.0.0_linux_amd64.zip" {
				attackerManifest = descriptor.Descriptor{MediaType: b.MediaType, Digest: b.Digest, Size: b.Size}
			}
		}
	}
	if attackerManifest.Digest == "" {
		t.Fatal("no attacker platform manifest forged")
	}
	// The inside pins the provider key and accepts unsigned bundles: the
	// attacker on the way cannot sign one, but need not.
	inside := bundle.ImportOptions{AllowUnsignedBundle: true, Policy: h.pinned()}
	if res, err := h.importAs(t, p.tar(t), false, inside); err != nil || res.Err() == nil {
		t.Fatalf("step one was not refused: %v", err)
	}
	h.noNewTags(t, "1.1.0", "2.0.0")
	// Step two: the real signed SHA256SUMS, the index pointing at the
	// attacker's manifest already in the registry, marked not carried.
	p2 := takeApart(t, h.good)
	p2.forge(t, forgery{address: widget, version: "1.0.0", outside: map[string]descriptor.Descriptor{"linux_amd64": attackerManifest}})
	res, err := h.importAs(t, p2.tar(t), false, inside)
	if err != nil {
		t.Fatal(err)
	}
	refusedItem(t, res, nil, bundle.ErrProvenance, "linux_amd64", "checksum mismatch")
	h.noNewTags(t, "1.1.0", "2.0.0")
}

// acme/widget 1.0.0 relabelled as another provider.
func TestHostileRelabelledProvider(t *testing.T) {
	h := newHostile(t)
	relabel := func(data []byte) []byte {
		p := takeApart(t, data)
		a := p.artifact(t, widget, "1.0.0")
		a.Address = "registry.opentofu.org/hashicorp/aws"
		return p.tar(t)
	}
	_, err := h.importAs(t, relabel(h.good), true, bundle.ImportOptions{})
	refusedItem(t, nil, err, bundle.ErrNotInPlan, "registry.opentofu.org/hashicorp/aws", "no provider entry")
	h.noNewTags(t)
	// Even when the inside's plan does mirror hashicorp/aws, the signed file
	// name binds the provider type.
	h.cfg = h.w.config(h.reg, defaultTemplate, planAB+"  - source: hashicorp/aws\n    versions: \">= 1.0.0\"\n")
	res, err := h.importAs(t, relabel(h.good), true, bundle.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	refusedItem(t, res, nil, bundle.ErrProvenance, "terraform-provider-aws_1.0.0_")
	h.noNewTags(t, "1.1.0", "2.0.0")
}

// A version outside the plan's constraint, a provider the plan lacks, a
// platform the plan does not want.
func TestHostileOutsideThePlan(t *testing.T) {
	h := newHostile(t)
	h.cfg = h.w.config(h.reg, defaultTemplate, `providers:
  - source: acme/widget
    versions: "1.1.0"
`)
	_, err := h.importAs(t, h.good, true, bundle.ImportOptions{})
	refusedItem(t, nil, err, bundle.ErrNotInPlan, widget+" 1.0.0", "outside its constraint", "registry.opentofu.org/acme/gadget", "no provider entry")
	h.noNewTags(t)

	cfg := h.w.config(h.reg, defaultTemplate, strings.ReplaceAll(planAB, `versions: ">= 1.0.0"`, "versions: \">= 1.0.0\"\n    platforms: [linux_amd64]"))
	h.cfg = cfg
	res, err := h.importAs(t, h.good, true, bundle.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	refusedItem(t, res, nil, bundle.ErrNotInPlan, "darwin_arm64")
}

// Control characters in an identity reach no output raw.
func TestHostileControlCharacters(t *testing.T) {
	h := newHostile(t)
	p := takeApart(t, h.good)
	p.artifact(t, widget, "1.0.0").Address = widget + "\x1b[2J\nINFO all good"
	_, err := h.importAs(t, p.tar(t), true, bundle.ImportOptions{})
	if err == nil || strings.ContainsAny(err.Error(), "\x1b") || !strings.Contains(err.Error(), `\x1b[2J\nINFO`) {
		t.Fatalf("identity not escaped: %q", err)
	}
	h.noNewTags(t)
}

// Provenance-typed blobs beyond what a release holds are refused before
// anything is read into memory.
func TestHostileManyProvenanceBlobs(t *testing.T) {
	h := newHostile(t)
	p := takeApart(t, h.good)
	a := p.artifact(t, widget, "1.0.0")
	for i := range 150 {
		a.Blobs = append(a.Blobs, bundle.BlobRef{Digest: digest.SHA256.FromString(fmt.Sprint(i)), Size: 4 << 20, MediaType: manifest.SHA256SUMSMediaType, Inside: true})
	}
	raw := mustJSON(t, p.meta)
	data := buildTar(t, []tarEntry{{&tar.Header{Name: bundle.MetadataFile, Mode: 0o644, Typeflag: tar.TypeReg}, raw}})
	_, err := h.importAs(t, data, true, bundle.ImportOptions{})
	refusedItem(t, nil, err, bundle.ErrFormat, "provenance blobs")
	h.noNewTags(t)
}

// A PAX sparse entry expands to far more than it stores: refused.
func TestHostileSparseEntry(t *testing.T) {
	h := newHostile(t)
	entries := tarEntries(t, h.good)
	meta := metadataOf(t, entries)
	i, d := blobEntry(t, entries, meta, manifest.ZipLayerMediaType)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries[:i] {
		h := *e.hdr
		_ = tw.WriteHeader(&h)
		_, _ = tw.Write(e.body)
	}
	_ = tw.Flush()
	// PAX format 0.1 sparse file: 10 bytes stored, the size the metadata
	// claims once expanded. archive/tar's writer refuses to write one, so
	// the blocks are made by hand.
	real := entries[i].hdr.Size
	recs := paxRecord("GNU.sparse.map", "0,10") + paxRecord("GNU.sparse.size", fmt.Sprint(real)) + paxRecord("GNU.sparse.numblocks", "1")
	buf.Write(ustarBlock(t, "PaxHeaders/x", int64(len(recs)), 'x'))
	buf.Write(padded([]byte(recs)))
	buf.Write(ustarBlock(t, "blobs/sha256/"+strings.TrimPrefix(d, "sha256:"), 10, '0'))
	buf.Write(padded(entries[i].body[:10]))
	buf.Write(make([]byte, 1024))
	_, err := h.importAs(t, buf.Bytes(), true, bundle.ImportOptions{})
	refusedItem(t, nil, err, bundle.ErrUnsafeEntry, "sparse")
	h.noNewTags(t)
}

func paxRecord(k, v string) string {
	rec := " " + k + "=" + v + "\n"
	n := len(rec) + 1
	for len(fmt.Sprint(n))+len(rec) != n {
		n = len(fmt.Sprint(n)) + len(rec)
	}
	return fmt.Sprint(n) + rec
}

func padded(b []byte) []byte {
	if r := len(b) % 512; r != 0 {
		b = append(b, make([]byte, 512-r)...)
	}
	return b
}

// ustarBlock is a USTAR header block of the given type flag, checksum set.
func ustarBlock(t *testing.T, name string, size int64, typeflag byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Size: size, Mode: 0o644, Typeflag: tar.TypeReg, Format: tar.FormatUSTAR}); err != nil {
		t.Fatal(err)
	}
	blk := append([]byte(nil), buf.Bytes()[:512]...)
	blk[156] = typeflag
	copy(blk[148:156], "        ")
	sum := 0
	for _, c := range blk {
		sum += int(c)
	}
	copy(blk[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return blk
}

// Tricks with split bundles: a part that is a symlink, a part listed
// twice, data hidden after the end of the tar.
func TestHostileParts(t *testing.T) {
	h := newHostile(t)
	w := h.w
	exp, data := w.export(w.config(nil, defaultTemplate, planAB), nil)
	mk := func(t *testing.T) (string, []string) {
		dir := t.TempDir()
		out := filepath.Join(dir, "bundle.tar")
		if err := exp.WriteFile(out, 8<<10); err != nil {
			t.Fatal(err)
		}
		parts, _ := filepath.Glob(out + ".0*")
		return out, parts
	}
	open := func(t *testing.T, arg string) error {
		r, err := bundle.OpenBundle(arg)
		if err != nil {
			return err
		}
		defer r.Close()
		_, err = bundle.Import(context.Background(), h.cfg, openTarget(t, h.cfg), r, signed(t, data, bundle.ImportOptions{SpoolDir: t.TempDir()}))
		return err
	}
	t.Run("symlinked part", func(t *testing.T) {
		out, parts := mk(t)
		elsewhere := filepath.Join(t.TempDir(), "p")
		if err := os.Rename(parts[1], elsewhere); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(elsewhere, parts[1]); err != nil {
			t.Fatal(err)
		}
		refusedItem(t, nil, open(t, out+bundle.PartsSuffix), bundle.ErrUnsafeEntry, "not a regular file", filepath.Base(parts[1]))
	})
	t.Run("part listed twice", func(t *testing.T) {
		out, _ := mk(t)
		var ps bundle.Parts
		raw, _ := os.ReadFile(out + bundle.PartsSuffix)
		_ = json.Unmarshal(raw, &ps)
		ps.Parts = append(ps.Parts, ps.Parts[0])
		_ = os.WriteFile(out+bundle.PartsSuffix, mustJSON(t, ps), 0o644)
		refusedItem(t, nil, open(t, out+bundle.PartsSuffix), bundle.ErrUnsafeEntry, "listed twice")
	})
	t.Run("a part after the end of the tar", func(t *testing.T) {
		out, parts := mk(t)
		extra := []byte("not padding: hidden data after the tar")
		name := filepath.Base(out) + ".999"
		_ = os.WriteFile(filepath.Join(filepath.Dir(out), name), extra, 0o644)
		var ps bundle.Parts
		raw, _ := os.ReadFile(out + bundle.PartsSuffix)
		_ = json.Unmarshal(raw, &ps)
		ps.Parts = append(ps.Parts, bundle.Part{Name: name, Size: int64(len(extra)), SHA256: hex.EncodeToString(sha256Of(extra))})
		_ = os.WriteFile(out+bundle.PartsSuffix, mustJSON(t, ps), 0o644)
		refusedItem(t, nil, open(t, out+bundle.PartsSuffix), bundle.ErrCorrupt, "after the end of the tar")
		_ = parts
	})
	h.noNewTags(t)
}

// A bundle with a signature by a key the inside does not trust, or a
// signature over other metadata, is refused before anything is pushed.
func TestHostileBundleSignature(t *testing.T) {
	h := newHostile(t)
	o := signed(t, h.good, bundle.ImportOptions{SpoolDir: t.TempDir()})
	o.BundleKeys = openpgp.EntityList{newEntity(t, "someone else")}
	_, err := bundle.Import(context.Background(), h.cfg, openTarget(t, h.cfg), bytes.NewReader(h.good), o)
	refusedItem(t, nil, err, bundle.ErrBundleSignature, "trust.bundle_keys")
	// A signature made for another bundle.
	p := takeApart(t, h.good)
	p.meta.Artifacts = p.meta.Artifacts[:1]
	o = signed(t, p.tar(t), bundle.ImportOptions{SpoolDir: t.TempDir()})
	_, err = bundle.Import(context.Background(), h.cfg, openTarget(t, h.cfg), bytes.NewReader(h.good), o)
	refusedItem(t, nil, err, bundle.ErrBundleSignature)
	h.noNewTags(t)
	if n := h.reg.Counts().Pushes(); n != 0 {
		t.Fatalf("a bundle with a bad signature pushed %d times", n)
	}
}

// The legitimate bundle: signed, imports, and the per-artifact checks pass.
func TestHostileLegitimateSignedBundleImports(t *testing.T) {
	h := newHostile(t)
	res, err := h.importAs(t, h.good, true, bundle.ImportOptions{Policy: h.pinned()})
	if err != nil || res.Err() != nil || res.Count(item.Done) != 3 {
		t.Fatalf("the legitimate bundle: %v %v", err, res.Err())
	}
}

// zipOf builds a module package zip from entries (name -> content; a
// content starting with "->" is a symlink target).
func zipOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range files {
		hdr := &zip.FileHeader{Name: name, Method: zip.Deflate}
		if target, ok := strings.CutPrefix(body, "->"); ok {
			hdr.SetMode(os.ModeSymlink | 0o777)
			body = target
		}
		f, err := zw.CreateHeader(hdr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = f.Write([]byte(body))
	}
	_ = zw.Close()
	return buf.Bytes()
}

// bombZip declares 10 GiB for an entry that stores a few bytes.
func bombZip(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	f, err := zw.CreateRaw(&zip.FileHeader{Name: "main.tf", Method: zip.Store, CompressedSize64: 5, UncompressedSize64: 10 << 30, CRC32: 0})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.Write([]byte("hello"))
	_ = zw.Close()
	return buf.Bytes()
}

// moduleHostile is a real signed export of one module version.
type moduleHostile struct {
	up   *testupstream.Server
	good []byte
	reg  *testregistry.Registry
}

func moduleConfig(t *testing.T, up *testupstream.Server, registry, versions string) *config.Config {
	t.Helper()
	svc := up.Services()
	cfg, err := config.Parse("mirror.yaml", []byte(fmt.Sprintf(`version: 1
target:
  registry: %q
  insecure: true
upstream:
  ca_file: %q
  hosts:
    registry.opentofu.org:
      services:
        providers.v1: %q
        modules.v1: %q
modules:
  - source: acme/greeting/null
    versions: %q
`, registry, up.CAFile, svc["providers.v1"], svc["modules.v1"], versions)))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func newModuleHostile(t *testing.T) *moduleHostile {
	up := testupstream.New(t)
	up.ServeArchive("/archives/greeting-1.0.0.zip", zipOf(t, map[string]string{"main.tf": "output \"text\" { value = \"hello\" }\n"}))
	up.AddModule("acme", "greeting", "null", "1.0.0", up.URL+"/archives/greeting-1.0.0.zip")
	m := &moduleHostile{up: up, reg: testregistry.New(t)}
	w := &world{t: t, up: up}
	cfg := moduleConfig(t, up, "127.0.0.1:1", ">= 1.0.0")
	exp, err := bundle.Export(context.Background(), cfg, nil, bundle.ExportOptions{ToolVersion: "test", StageDir: t.TempDir(), Upstream: w.client(cfg)})
	if err != nil || exp.Result.Err() != nil {
		t.Fatalf("export: %v %v", err, exp.Result.Err())
	}
	var buf bytes.Buffer
	if err := exp.WriteTar(&buf); err != nil {
		t.Fatal(err)
	}
	m.good = buf.Bytes()
	return m
}

// withZip replaces the module's package by data, rebuilding its manifest
// and the metadata as an attacker would.
func (m *moduleHostile) withZip(t *testing.T, data []byte) []byte {
	t.Helper()
	p := takeApart(t, m.good)
	a := &p.meta.Artifacts[0]
	zref := p.add(data, manifest.ZipLayerMediaType, false)
	art, err := manifest.ModulePackageAnnotated(descriptor.Descriptor{MediaType: manifest.ZipLayerMediaType, Digest: zref.Digest, Size: zref.Size}, manifest.ModulePackageInfo{})
	if err != nil {
		t.Fatal(err)
	}
	mref := p.add(art.Raw, art.Descriptor.MediaType, true)
	a.Blobs = []bundle.BlobRef{p.add([]byte("{}"), manifest.EmptyConfig().MediaType, false), zref, mref}
	a.Manifest = art.Descriptor
	return p.tar(t)
}

func (m *moduleHostile) importInto(t *testing.T, data []byte, versions string) (*item.Run, error) {
	t.Helper()
	cfg := moduleConfig(t, m.up, m.reg.Host, versions)
	return bundle.Import(context.Background(), cfg, openTarget(t, cfg), bytes.NewReader(data), signed(t, data, bundle.ImportOptions{SpoolDir: t.TempDir()}))
}

func (m *moduleHostile) noTags(t *testing.T) {
	t.Helper()
	if tags := tagDigests(t, m.reg, "opentofu-modules/acme/greeting/null"); len(tags) != 0 {
		t.Fatalf("tagged after a refused import: %v", tags)
	}
}

// Modules go through the archive checks sync applies, before upload.
func TestHostileModulePackages(t *testing.T) {
	m := newModuleHostile(t)
	for _, c := range []struct {
		name string
		zip  []byte
		says string
	}{
		{"dot-dot", zipOf(t, map[string]string{"main.tf": "x", "../../evil.tf": "x"}), "evil.tf"},
		{"absolute path", zipOf(t, map[string]string{"/etc/cron.d/evil": "x"}), "/etc/cron.d/evil"},
		{"symlink out of the package", zipOf(t, map[string]string{"main.tf": "x", "passwd": "->/etc/passwd"}), "passwd"},
		{"bomb", bombZip(t), "main.tf"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := m.reg.Counts().BlobUploadStart
			_, err := m.importInto(t, m.withZip(t, c.zip), ">= 1.0.0")
			refusedItem(t, nil, err, bundle.ErrUnsafeModule, "module registry.opentofu.org/acme/greeting/null 1.0.0", c.says)
			if up := m.reg.Counts().BlobUploadStart - before; up > 1 {
				t.Errorf("%d blobs uploaded before the package was refused (only the empty config may be)", up)
			}
			m.noTags(t)
		})
	}
	t.Run("outside the constraint", func(t *testing.T) {
		_, err := m.importInto(t, m.good, "~> 2.0")
		refusedItem(t, nil, err, bundle.ErrNotInPlan, "outside its constraint")
		m.noTags(t)
	})
	t.Run("a module the plan does not list", func(t *testing.T) {
		p := takeApart(t, m.good)
		p.meta.Artifacts[0].Address = "registry.opentofu.org/acme/other/null"
		_, err := m.importInto(t, p.tar(t), ">= 1.0.0")
		refusedItem(t, nil, err, bundle.ErrNotInPlan, "acme/other/null")
		m.noTags(t)
	})
	t.Run("the real package imports", func(t *testing.T) {
		res, err := m.importInto(t, m.good, ">= 1.0.0")
		if err != nil || res.Err() != nil || res.Count(item.Done) != 1 {
			t.Fatalf("%v %v", err, res.Err())
		}
	})
}
