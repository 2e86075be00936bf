package faulttest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/regclient/regclient"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/errs"
	"github.com/regclient/regclient/types/ref"
)

// OpenTofu's media and artifact types, spelled out here rather than taken
// from the manifest package, so the check does not trust the code it checks.
const (
	indexMediaType     = "application/vnd.oci.image.index.v1+json"
	manifestMediaType  = "application/vnd.oci.image.manifest.v1+json"
	providerArtifact   = "application/vnd.opentofu.provider"
	platformArtifact   = "application/vnd.opentofu.provider-target"
	zipLayerMediaType  = "archive/zip"
	fallbackTagPrefix  = "sha256-"
	maxProblemsPerRepo = 20
)

// Tags lists every tag of repo on host, referrers fallback tags included;
// a repository that does not exist has none.
func Tags(ctx context.Context, rc *regclient.RegClient, host, repo string) ([]string, error) {
	r, err := ref.New(host + "/" + repo)
	if err != nil {
		return nil, err
	}
	tl, err := rc.TagList(ctx, r)
	if errors.Is(err, errs.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing the tags of %s: %w", repo, err)
	}
	tags, err := tl.GetTags()
	if err != nil {
		return nil, fmt.Errorf("listing the tags of %s: %w", repo, err)
	}
	slices.Sort(tags)
	return tags, nil
}

// TagDigests returns "repo:tag digest" for every tag of repos, sorted: the
// state a rerun must reproduce exactly.
func TagDigests(ctx context.Context, rc *regclient.RegClient, host string, repos ...string) ([]string, error) {
	var out []string
	for _, repo := range repos {
		tags, err := Tags(ctx, rc, host, repo)
		if err != nil {
			return nil, err
		}
		r, _ := ref.New(host + "/" + repo)
		for _, tag := range tags {
			m, err := rc.ManifestHead(ctx, r.SetTag(tag), regclient.WithManifestRequireDigest())
			if err != nil {
				return nil, fmt.Errorf("%s:%s: %w", repo, tag, err)
			}
			out = append(out, fmt.Sprintf("%s:%s %s", repo, tag, m.GetDescriptor().Digest))
		}
	}
	slices.Sort(out)
	return out, nil
}

// CompleteProviderVersions checks what OpenTofu would see in a provider
// repository: every version tag (all tags but referrers fallback tags)
// must be a provider index holding exactly platforms ("os_arch", sorted),
// each entry a provider-target manifest that exists, whose config and
// archive/zip layer blobs exist with their sizes. It returns the version
// tags, and an error naming every problem found.
func CompleteProviderVersions(ctx context.Context, rc *regclient.RegClient, host, repo string, platforms []string) ([]string, error) {
	all, err := Tags(ctx, rc, host, repo)
	if err != nil {
		return nil, err
	}
	r, err := ref.New(host + "/" + repo)
	if err != nil {
		return nil, err
	}
	var tags []string
	var problems []string
	for _, tag := range all {
		if strings.HasPrefix(tag, fallbackTagPrefix) {
			continue
		}
		tags = append(tags, tag)
		problems = append(problems, checkIndex(ctx, rc, r, tag, platforms)...)
		if len(problems) > maxProblemsPerRepo {
			break
		}
	}
	if len(problems) > 0 {
		return tags, fmt.Errorf("%s: %d problems:\n  %s", repo, len(problems), strings.Join(problems, "\n  "))
	}
	return tags, nil
}

type ociManifest struct {
	MediaType    string                  `json:"mediaType"`
	ArtifactType string                  `json:"artifactType"`
	Config       descriptor.Descriptor   `json:"config"`
	Layers       []descriptor.Descriptor `json:"layers"`
	Manifests    []descriptor.Descriptor `json:"manifests"`
}

func getManifest(ctx context.Context, rc *regclient.RegClient, r ref.Ref) (*ociManifest, error) {
	m, err := rc.ManifestGet(ctx, r)
	if err != nil {
		return nil, err
	}
	raw, err := m.RawBody()
	if err != nil {
		return nil, err
	}
	var om ociManifest
	if err := json.Unmarshal(raw, &om); err != nil {
		return nil, err
	}
	return &om, nil
}

// checkIndex returns the problems of one version tag.
func checkIndex(ctx context.Context, rc *regclient.RegClient, repo ref.Ref, tag string, platforms []string) []string {
	idx, err := getManifest(ctx, rc, repo.SetTag(tag))
	if err != nil {
		return []string{fmt.Sprintf("%s: %v", tag, err)}
	}
	if idx.MediaType != indexMediaType || idx.ArtifactType != providerArtifact {
		return []string{fmt.Sprintf("%s: %s of artifact type %q, not a provider index", tag, idx.MediaType, idx.ArtifactType)}
	}
	var problems []string
	var got []string
	for _, d := range idx.Manifests {
		if d.MediaType != manifestMediaType || d.ArtifactType != platformArtifact || d.Platform == nil {
			problems = append(problems, fmt.Sprintf("%s: index entry %s is not a provider-target manifest with a platform", tag, d.Digest))
			continue
		}
		key := d.Platform.OS + "_" + d.Platform.Architecture
		got = append(got, key)
		pm, err := getManifest(ctx, rc, repo.SetDigest(d.Digest.String()))
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s %s: manifest %s: %v", tag, key, d.Digest, err))
			continue
		}
		if len(pm.Layers) != 1 || pm.Layers[0].MediaType != zipLayerMediaType {
			problems = append(problems, fmt.Sprintf("%s %s: manifest %s does not hold one archive/zip layer", tag, key, d.Digest))
			continue
		}
		for _, b := range []descriptor.Descriptor{pm.Config, pm.Layers[0]} {
			rdr, err := rc.BlobHead(ctx, repo, b)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s %s: blob %s: %v", tag, key, b.Digest, err))
				continue
			}
			if size := rdr.GetDescriptor().Size; size != b.Size {
				problems = append(problems, fmt.Sprintf("%s %s: blob %s is %d bytes, the manifest says %d", tag, key, b.Digest, size, b.Size))
			}
			_ = rdr.Close()
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, platforms) {
		problems = append(problems, fmt.Sprintf("%s: visible with platforms %v, want %v", tag, got, platforms))
	}
	return problems
}
