package manifest

import (
	"errors"
	"fmt"

	"github.com/regclient/regclient/types/descriptor"
)

// ModulePackage builds the image manifest of a module package: one
// archive/zip layer whose root is the package root.
func ModulePackage(zip descriptor.Descriptor) (Artifact, error) {
	layer := descriptor.Descriptor{MediaType: ZipLayerMediaType, Digest: zip.Digest, Size: zip.Size}
	return imageManifest(ModulePackageArtifactType, []descriptor.Descriptor{layer}, nil)
}

// ModulePackageLayer checks manifest bytes found at a module version tag and
// returns the zip layer. It wraps [ErrNotModulePackage] when the tag holds
// another kind of artifact.
func ModulePackageLayer(raw []byte) (descriptor.Descriptor, error) {
	d, err := zipLayer(raw, ModulePackageArtifactType, ErrInvalidModulePackage)
	if err != nil && !errors.Is(err, ErrTooLarge) {
		return d, fmt.Errorf("%w: %w", ErrNotModulePackage, err)
	}
	return d, err
}

// Provenance builds the referrer artifact that keeps a provider version's
// signed SHA256SUMS, its detached signature and the armored public key that
// verified it, with subject = the provider index. Any of the three may be
// absent (an unsigned release keeps only SHA256SUMS).
func Provenance(subject descriptor.Descriptor, sums, sig, key descriptor.Descriptor) (Artifact, error) {
	var layers []descriptor.Descriptor
	for _, l := range []descriptor.Descriptor{sums, sig, key} {
		if l.Digest != "" {
			layers = append(layers, l)
		}
	}
	sub := descriptor.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size, ArtifactType: subject.ArtifactType}
	return imageManifest(ProvenanceArtifactType, layers, &sub)
}
