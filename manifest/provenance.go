package manifest

import (
	"fmt"

	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/mediatype"
)

// Provenance kept without subject, for registries that refuse referrers
// (Amazon ECR answers 405 to a manifest with subject and artifactType,
// aws/containers-roadmap#2783).
const (
	// ProvenanceSubjectAnnotation binds a detached provenance manifest to
	// the provider index it is about, as subject does for a referrer: its
	// value is the index digest ("sha256:<hex>").
	ProvenanceSubjectAnnotation = "vnd.tofu-oci-mirror.provenance.subject"
	// ProvenanceTagPrefix starts the tag a detached provenance manifest is
	// kept under. Such a tag never parses as a version, so OpenTofu, the
	// planner, verify and the inventory ignore it; and it is not the
	// sha256-<hex> referrers fallback tag, which regclient and oras
	// rewrite as an index of referrers.
	ProvenanceTagPrefix = "tofu-provenance-"
)

// ProvenanceTag is the tag of the detached provenance of the provider
// index with digest index: "tofu-provenance-<64 hex>" (80 characters, a
// valid OCI tag).
func ProvenanceTag(index digest.Digest) string { return ProvenanceTagPrefix + index.Encoded() }

// DetachedProvenance builds the provenance artifact of [Provenance]
// without subject: the same artifactType and layers, bound to the index by
// [ProvenanceSubjectAnnotation]. It is deterministic, so sync and import
// write the same bytes for the same release and index.
func DetachedProvenance(subject digest.Digest, sums, sig, key descriptor.Descriptor) (Artifact, error) {
	var layers []descriptor.Descriptor
	for _, l := range []descriptor.Descriptor{sums, sig, key} {
		if l.Digest != "" {
			layers = append(layers, l)
		}
	}
	return detached(subject, layers)
}

func detached(subject digest.Digest, layers []descriptor.Descriptor) (Artifact, error) {
	if err := subject.Validate(); err != nil {
		return Artifact{}, fmt.Errorf("provenance subject %q: %w", subject, err)
	}
	m := ociManifest{
		SchemaVersion: 2,
		MediaType:     mediatype.OCI1Manifest,
		ArtifactType:  ProvenanceArtifactType,
		Config:        EmptyConfig(),
		Layers:        layers,
		Annotations:   map[string]string{ProvenanceSubjectAnnotation: subject.String()},
	}
	return marshal(m, mediatype.OCI1Manifest, ProvenanceArtifactType)
}

// ProvenanceSubject returns the index a provenance manifest of either form
// is about (its subject, or the annotation of a detached one) and whether
// it is detached; "" when raw is neither.
func ProvenanceSubject(raw []byte) (subject digest.Digest, isDetached bool) {
	p, err := Parse(raw)
	if err != nil || p.ArtifactType != ProvenanceArtifactType {
		return "", false
	}
	if p.Subject != nil {
		return p.Subject.Digest, false
	}
	if s := p.Annotations[ProvenanceSubjectAnnotation]; s != "" {
		if d, err := digest.Parse(s); err == nil {
			return d, true
		}
	}
	return "", false
}

// ProvenanceForms rebuilds, from a provenance manifest of either form
// about index, both forms with its layers: the referrer (subject = index)
// and the detached manifest. A form raw already is comes back with raw's
// exact bytes.
func ProvenanceForms(raw []byte, index descriptor.Descriptor) (referrer, detachedForm Artifact, err error) {
	p, err := Parse(raw)
	if err != nil {
		return Artifact{}, Artifact{}, err
	}
	subj, isDetached := ProvenanceSubject(raw)
	if subj != index.Digest {
		return Artifact{}, Artifact{}, fmt.Errorf("provenance manifest is not about index %s", index.Digest)
	}
	self := Artifact{Descriptor: descriptor.Descriptor{MediaType: mediatype.OCI1Manifest, Digest: digest.SHA256.FromBytes(raw), Size: int64(len(raw)), ArtifactType: ProvenanceArtifactType}, Raw: raw}
	if isDetached {
		sub := descriptor.Descriptor{MediaType: index.MediaType, Digest: index.Digest, Size: index.Size, ArtifactType: index.ArtifactType}
		referrer, err = imageManifest(ProvenanceArtifactType, p.Layers, &sub)
		return referrer, self, err
	}
	detachedForm, err = detached(index.Digest, p.Layers)
	return self, detachedForm, err
}
