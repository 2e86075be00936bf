package lockfile

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/apparentlymart/go-versions/versions"
	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient/types/descriptor"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/provenance"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/upstream"
)

// Target is what this package reads of the mirror: tag lists, manifests,
// blobs and referrers. *target.Target is one; so is anything with these five
// methods (a layout, a bundle, a counting wrapper in tests).
type Target interface {
	Tags(ctx context.Context, repo string) ([]string, error)
	Manifest(ctx context.Context, repo, tag string) ([]byte, descriptor.Descriptor, error)
	ManifestByDigest(ctx context.Context, repo string, d digest.Digest) ([]byte, descriptor.Descriptor, error)
	Blob(ctx context.Context, repo string, d descriptor.Descriptor) (io.ReadCloser, error)
	Referrers(ctx context.Context, repo string, subject digest.Digest, artifactType string) ([]descriptor.Descriptor, error)
}

// HeldVersions lists the provider versions a repository holds: its tags
// that are versions as OpenTofu reads them ("_" for "+"), mapped to the
// tag, newest first. Other tags ("latest", sha256-<hex>) are skipped, as
// OpenTofu skips them. Costs one tag-list request per page.
func HeldVersions(ctx context.Context, t Target, repo string) (versions.List, map[string]string, error) {
	tags, err := t.Tags(ctx, repo)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: listing tags of %s: %w", ErrTarget, repo, err)
	}
	var list versions.List
	byVersion := map[string]string{}
	for _, tag := range tags {
		v, err := versions.ParseVersion(manifest.VersionFromTag(tag))
		if err != nil {
			continue
		}
		if _, dup := byVersion[v.String()]; !dup {
			list = append(list, v)
		}
		byVersion[v.String()] = tag
	}
	list.Sort()
	slices.Reverse(list)
	return list, byVersion, nil
}

// Release is one provider version as the mirror holds it.
type Release struct {
	// Address is the provider's "hostname/namespace/type".
	Address string
	// Repository and Tag locate the index.
	Repository, Tag string
	// Index is the digest of the provider index at Tag.
	Index digest.Digest
	// Platforms maps "os_arch" to the index entry for it.
	Platforms map[string]manifest.PlatformManifest
	// Provenance is the stored signed SHA256SUMS, verified again; nil when
	// no provenance refers to the index.
	Provenance *upstream.Provenance
}

// ReadRelease reads the index at tag and re-verifies every provenance
// artifact referring to it, offline, under policy ([provenance.Policy.CheckStored]:
// its SHA256SUMS against its signature with a key policy trusts; the zero
// policy trusts none). One provenance that does not verify fails the
// release with [ErrProvenance]: a mirror holding a tampered SHA256SUMS must
// not hand its hashes to users. Costs one GET of the index, one referrers
// lookup and, per provenance, one GET of its manifest and of each layer.
func ReadRelease(ctx context.Context, t Target, policy provenance.Policy, repo, address, tag string) (*Release, error) {
	raw, desc, err := t.Manifest(ctx, repo, tag)
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s:%s: %w", ErrTarget, repo, tag, err)
	}
	info, err := manifest.ParseProviderIndex(raw)
	if err != nil {
		return nil, fmt.Errorf("%s:%s: %w", repo, tag, err)
	}
	rel := &Release{Address: address, Repository: repo, Tag: tag, Index: desc.Digest, Platforms: info.Platforms}
	refs, err := t.Referrers(ctx, repo, desc.Digest, manifest.ProvenanceArtifactType)
	if err != nil {
		return nil, fmt.Errorf("%w: listing referrers of %s in %s: %w", ErrTarget, desc.Digest, repo, err)
	}
	for _, ref := range refs {
		praw, _, err := t.ManifestByDigest(ctx, repo, ref.Digest)
		if err != nil {
			return nil, fmt.Errorf("%w: reading provenance %s in %s: %w", ErrTarget, ref.Digest, repo, err)
		}
		prov, err := policy.CheckStored(address, praw, desc.Digest, func(l descriptor.Descriptor) ([]byte, error) {
			return provenance.ReadLayer(ctx, t, repo, l)
		})
		if err != nil {
			// err wraps ErrProvenance already.
			return nil, fmt.Errorf("provider %s %s: provenance %s: %w", address, manifest.VersionFromTag(tag), ref.Digest, err)
		}
		if rel.Provenance == nil {
			rel.Provenance = prov
		}
	}
	return rel, nil
}

// PackageLayer reads the platform manifest of one platform and returns its
// zip layer (whose digest is the zh: hash). Costs one manifest GET.
func (r *Release) PackageLayer(ctx context.Context, t Target, platform string) (descriptor.Descriptor, error) {
	pm, ok := r.Platforms[platform]
	if !ok {
		return descriptor.Descriptor{}, fmt.Errorf("%w: provider %s %s: %s is not in the index at %s:%s", ErrMissingPlatform, r.Address, manifest.VersionFromTag(r.Tag), platform, r.Repository, r.Tag)
	}
	raw, _, err := t.ManifestByDigest(ctx, r.Repository, pm.Manifest.Digest)
	if err != nil {
		return descriptor.Descriptor{}, fmt.Errorf("%w: reading platform manifest %s in %s: %w", ErrTarget, pm.Manifest.Digest, r.Repository, err)
	}
	layer, err := manifest.ProviderTargetLayer(raw)
	if err != nil {
		return descriptor.Descriptor{}, fmt.Errorf("provider %s %s %s: %w", r.Address, manifest.VersionFromTag(r.Tag), platform, err)
	}
	if r.Provenance != nil {
		providerType := r.Address[strings.LastIndexByte(r.Address, '/')+1:]
		if err := provenance.CheckPackageSigned(r.Provenance, layer, providerType, manifest.VersionFromTag(r.Tag), platform); err != nil {
			return descriptor.Descriptor{}, fmt.Errorf("%w: provider %s %s %s: %w", ErrProvenance, r.Address, manifest.VersionFromTag(r.Tag), platform, err)
		}
	}
	return layer, nil
}
