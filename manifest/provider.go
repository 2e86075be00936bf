package manifest

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/mediatype"
	"github.com/regclient/regclient/types/platform"
)

// Tag returns the OCI tag for a version: semver build metadata's "+" is not
// allowed in tags, so OpenTofu reads "_" in its place.
func Tag(version string) string { return strings.ReplaceAll(version, "+", "_") }

// VersionFromTag reverses [Tag].
func VersionFromTag(tag string) string { return strings.ReplaceAll(tag, "_", "+") }

// PlatformManifest is one entry of a provider index: the platform in
// OpenTofu's os/arch names and the descriptor of its image manifest.
type PlatformManifest struct {
	OS, Arch string
	Manifest descriptor.Descriptor
}

// Key returns the platform as OpenTofu writes it, "linux_amd64".
func (p PlatformManifest) Key() string { return p.OS + "_" + p.Arch }

// ProviderTarget builds the image manifest of one platform package: the
// upstream zip, byte for byte, as the only layer. filename, when not empty,
// is kept as the layer's title annotation.
func ProviderTarget(zip descriptor.Descriptor, filename string) (Artifact, error) {
	layer := descriptor.Descriptor{MediaType: ZipLayerMediaType, Digest: zip.Digest, Size: zip.Size}
	if filename != "" {
		layer.Annotations = map[string]string{TitleAnnotation: filename}
	}
	return imageManifest(ProviderTargetArtifactType, []descriptor.Descriptor{layer}, nil)
}

// ProviderIndex builds the image index a version tag points at, one entry per
// platform sorted by os then arch. Duplicate platforms are an error.
func ProviderIndex(platforms []PlatformManifest) (Artifact, error) {
	return ProviderIndexKeeping(platforms, nil)
}

// ProviderIndexKeeping is [ProviderIndex] followed by ignored, the entries
// OpenTofu passes over that the tag's index held before (see
// [ProviderIndexInfo.Ignored]), verbatim and in their order: rewriting an
// index to add a platform must not drop what another tool put there. An
// ignored entry that [ParseProviderIndex] would read as a platform is an
// error, so the result always parses back to the same platforms and
// ignored entries.
func ProviderIndexKeeping(platforms []PlatformManifest, ignored []descriptor.Descriptor) (Artifact, error) {
	for i, d := range ignored {
		if !skippedByOpenTofu(d) {
			return Artifact{}, fmt.Errorf("%w: kept entry %d (%s) is a platform OpenTofu would read", ErrInvalidProviderIndex, i, d.Digest)
		}
	}
	if len(platforms) == 0 {
		return Artifact{}, fmt.Errorf("%w: no platforms", ErrInvalidProviderIndex)
	}
	sorted := append([]PlatformManifest(nil), platforms...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Key() < sorted[j].Key() })
	entries := make([]descriptor.Descriptor, 0, len(sorted))
	for i, p := range sorted {
		if i > 0 && sorted[i-1].Key() == p.Key() {
			return Artifact{}, fmt.Errorf("%w: platform %s listed twice", ErrInvalidProviderIndex, p.Key())
		}
		entries = append(entries, descriptor.Descriptor{
			MediaType:    mediatype.OCI1Manifest,
			Digest:       p.Manifest.Digest,
			Size:         p.Manifest.Size,
			ArtifactType: ProviderTargetArtifactType,
			Platform:     &platform.Platform{OS: p.OS, Architecture: p.Arch},
		})
	}
	idx := ociIndex{
		SchemaVersion: 2,
		MediaType:     mediatype.OCI1ManifestList,
		ArtifactType:  ProviderIndexArtifactType,
		Manifests:     append(entries, ignored...),
	}
	return marshal(idx, mediatype.OCI1ManifestList, ProviderIndexArtifactType)
}

// skippedByOpenTofu reports whether OpenTofu passes over an index entry for
// every platform: another artifact type, an os.version, or an empty os or
// architecture (the checks of ParseProviderIndex, in its order).
func skippedByOpenTofu(d descriptor.Descriptor) bool {
	if d.ArtifactType != ProviderTargetArtifactType {
		return true
	}
	return d.MediaType == mediatype.OCI1Manifest && d.Platform != nil &&
		(d.Platform.OSVersion != "" || d.Platform.OS == "" || d.Platform.Architecture == "")
}

// ProviderIndexInfo is what a valid provider index in a registry holds.
type ProviderIndexInfo struct {
	// Platforms maps "os_arch" to the entry for it.
	Platforms map[string]PlatformManifest
	// Ignored are the entries OpenTofu passes over (other artifact types,
	// an os.version, an empty os or architecture), verbatim and in index
	// order, so that a rewrite of the index can keep them; nil when none.
	Ignored []descriptor.Descriptor
}

// PlatformKeys returns the index's platforms, sorted.
func (p *ProviderIndexInfo) PlatformKeys() []string {
	keys := make([]string, 0, len(p.Platforms))
	for k := range p.Platforms {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ParseProviderIndex reads manifest bytes found at a version tag and checks
// them against OpenTofu's contract. It returns an error wrapping
// [ErrNotProviderIndex] when the tag holds something else entirely (an image,
// another artifact), and [ErrInvalidProviderIndex] when it claims to be a
// provider index but OpenTofu would refuse it.
func ParseProviderIndex(raw []byte) (*ProviderIndexInfo, error) {
	if len(raw) > MaxManifestSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(raw))
	}
	var idx ociIndex
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotProviderIndex, err)
	}
	if idx.MediaType != mediatype.OCI1ManifestList {
		return nil, fmt.Errorf("%w: media type %q", ErrNotProviderIndex, idx.MediaType)
	}
	if idx.ArtifactType != ProviderIndexArtifactType {
		return nil, fmt.Errorf("%w: artifact type %q", ErrNotProviderIndex, idx.ArtifactType)
	}
	info := &ProviderIndexInfo{Platforms: map[string]PlatformManifest{}}
	for i, d := range idx.Manifests {
		// The order of checks is selectOCIImageManifest's in OpenTofu's
		// oci_registry_mirror_source.go: what it skips for every platform
		// is ignored here; what makes it fail is an error.
		if d.ArtifactType != ProviderTargetArtifactType {
			info.Ignored = append(info.Ignored, d)
			continue
		}
		if d.MediaType != mediatype.OCI1Manifest {
			return nil, fmt.Errorf("%w: entry %d: media type %q", ErrInvalidProviderIndex, i, d.MediaType)
		}
		if d.Platform == nil {
			return nil, fmt.Errorf("%w: entry %d: no platform", ErrInvalidProviderIndex, i)
		}
		if d.Platform.OSVersion != "" || d.Platform.OS == "" || d.Platform.Architecture == "" {
			// Never the platform OpenTofu installs for: it skips these.
			info.Ignored = append(info.Ignored, d)
			continue
		}
		if err := d.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("%w: entry %d: digest: %v", ErrInvalidProviderIndex, i, err)
		}
		p := PlatformManifest{OS: d.Platform.OS, Arch: d.Platform.Architecture,
			Manifest: descriptor.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size, ArtifactType: d.ArtifactType}}
		if _, dup := info.Platforms[p.Key()]; dup {
			// OpenTofu refuses an ambiguous index for that platform.
			return nil, fmt.Errorf("%w: platform %s listed twice", ErrInvalidProviderIndex, p.Key())
		}
		info.Platforms[p.Key()] = p
	}
	return info, nil
}

// ProviderTargetLayer reads a platform manifest and returns its one
// archive/zip layer, as OpenTofu selects it.
func ProviderTargetLayer(raw []byte) (descriptor.Descriptor, error) {
	return zipLayer(raw, ProviderTargetArtifactType, ErrInvalidProviderIndex)
}

// zipLayer checks an image manifest of the given artifact type and returns
// its single archive/zip layer.
func zipLayer(raw []byte, artifactType string, invalid error) (descriptor.Descriptor, error) {
	if len(raw) > MaxManifestSize {
		return descriptor.Descriptor{}, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(raw))
	}
	var m ociManifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return descriptor.Descriptor{}, fmt.Errorf("%w: %v", invalid, err)
	}
	if m.MediaType != mediatype.OCI1Manifest {
		return descriptor.Descriptor{}, fmt.Errorf("%w: media type %q", invalid, m.MediaType)
	}
	if m.ArtifactType != artifactType {
		return descriptor.Descriptor{}, fmt.Errorf("%w: artifact type %q", invalid, m.ArtifactType)
	}
	var found []descriptor.Descriptor
	for _, l := range m.Layers {
		if l.MediaType == ZipLayerMediaType {
			found = append(found, l)
		}
	}
	if len(found) != 1 {
		return descriptor.Descriptor{}, fmt.Errorf("%w: %d archive/zip layers, want exactly 1", invalid, len(found))
	}
	if err := found[0].Digest.Validate(); err != nil {
		return descriptor.Descriptor{}, fmt.Errorf("%w: layer digest: %v", invalid, err)
	}
	return found[0], nil
}
