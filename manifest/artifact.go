package manifest

import (
	"encoding/json"
	"fmt"

	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/mediatype"
)

// Media and artifact types of the OpenTofu OCI contract.
const (
	// ProviderIndexArtifactType marks the image index a provider version tag points at.
	ProviderIndexArtifactType = "application/vnd.opentofu.provider"
	// ProviderTargetArtifactType marks each per-platform image manifest of a provider.
	ProviderTargetArtifactType = "application/vnd.opentofu.provider-target"
	// ModulePackageArtifactType marks the image manifest of a module package.
	ModulePackageArtifactType = "application/vnd.opentofu.modulepkg"
	// ZipLayerMediaType is the media type of the one layer OpenTofu extracts.
	ZipLayerMediaType = "archive/zip"
	// ProvenanceArtifactType marks our referrer artifact holding the signed
	// SHA256SUMS, its detached signature and the public key that verified it.
	ProvenanceArtifactType = "application/vnd.tofu-oci-mirror.provenance.v1"
	// SHA256SUMSMediaType is the media type of the SHA256SUMS layer of a provenance artifact.
	SHA256SUMSMediaType = "text/plain; charset=utf-8"
	// SignatureMediaType is the media type of the binary detached OpenPGP signature layer.
	SignatureMediaType = "application/pgp-signature"
	// PublicKeyMediaType is the media type of the ASCII-armored OpenPGP public key layer.
	PublicKeyMediaType = "application/pgp-keys"
	// TitleAnnotation names a layer's file, as oras push does, so generic OCI
	// tools can save the zip under its upstream filename.
	TitleAnnotation = "org.opencontainers.image.title"
	// MaxManifestSize is the largest manifest OpenTofu accepts (4 MiB).
	MaxManifestSize = 4 << 20
)

// Artifact is a manifest ready to push: the exact bytes and the descriptor
// whose digest and size were computed from them. Push Raw unchanged; a second
// marshal could reorder fields and break the digest.
type Artifact struct {
	Descriptor descriptor.Descriptor
	Raw        []byte
}

// EmptyConfig is the OCI empty descriptor used as config by every manifest we build.
func EmptyConfig() descriptor.Descriptor {
	return descriptor.Descriptor{
		MediaType: mediatype.OCI1Empty,
		Digest:    descriptor.EmptyDigest,
		Size:      int64(len(descriptor.EmptyData)),
	}
}

// BlobDescriptor describes a layer blob by its media type, sha256 hex digest and size.
func BlobDescriptor(mediaType, sha256Hex string, size int64) (descriptor.Descriptor, error) {
	d := digest.NewDigestFromEncoded(digest.SHA256, sha256Hex)
	if err := d.Validate(); err != nil {
		return descriptor.Descriptor{}, fmt.Errorf("blob digest %q: %w", sha256Hex, err)
	}
	return descriptor.Descriptor{MediaType: mediaType, Digest: d, Size: size}, nil
}

// marshal encodes v and describes the bytes; artifactType is copied into the
// descriptor, as an index entry or a referrer listing needs it.
func marshal(v any, mediaType, artifactType string) (Artifact, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return Artifact{}, err
	}
	if len(raw) > MaxManifestSize {
		return Artifact{}, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(raw))
	}
	return Artifact{
		Descriptor: descriptor.Descriptor{
			MediaType:    mediaType,
			Digest:       digest.SHA256.FromBytes(raw),
			Size:         int64(len(raw)),
			ArtifactType: artifactType,
		},
		Raw: raw,
	}, nil
}

// imageManifest builds an OCI image manifest with the empty config.
func imageManifest(artifactType string, layers []descriptor.Descriptor, subject *descriptor.Descriptor) (Artifact, error) {
	m := ociManifest{
		SchemaVersion: 2,
		MediaType:     mediatype.OCI1Manifest,
		ArtifactType:  artifactType,
		Config:        EmptyConfig(),
		Layers:        layers,
		Subject:       subject,
	}
	return marshal(m, mediatype.OCI1Manifest, artifactType)
}

// ociManifest and ociIndex fix the field order of what we marshal, so digests
// do not depend on another library's struct layout.
type ociManifest struct {
	SchemaVersion int                     `json:"schemaVersion"`
	MediaType     string                  `json:"mediaType"`
	ArtifactType  string                  `json:"artifactType,omitempty"`
	Config        descriptor.Descriptor   `json:"config"`
	Layers        []descriptor.Descriptor `json:"layers"`
	Subject       *descriptor.Descriptor  `json:"subject,omitempty"`
	Annotations   map[string]string       `json:"annotations,omitempty"`
}

type ociIndex struct {
	SchemaVersion int                     `json:"schemaVersion"`
	MediaType     string                  `json:"mediaType"`
	ArtifactType  string                  `json:"artifactType,omitempty"`
	Manifests     []descriptor.Descriptor `json:"manifests"`
	Subject       *descriptor.Descriptor  `json:"subject,omitempty"`
	Annotations   map[string]string       `json:"annotations,omitempty"`
}
