package bundle

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/errs"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"
)

// Baseline answers the exporting planner's questions about the inside
// registry from an inventory, so export plans against what the inside
// really holds. Repositories are those of the exporting plan; they are
// mapped to identities, since the inside may lay them out differently.
type Baseline struct {
	byRepo map[string]*InventoryEntry
	blobs  map[string]map[digest.Digest]descriptor.Descriptor // repo -> blobs present inside
}

// NewBaseline indexes inv by the repositories cfg renders for the same
// identities. A nil inventory is an empty target: everything is exported.
func NewBaseline(inv *Inventory, cfg *config.Config) *Baseline {
	b := &Baseline{byRepo: map[string]*InventoryEntry{}, blobs: map[string]map[digest.Digest]descriptor.Descriptor{}}
	if inv == nil {
		return b
	}
	byID := map[string]*InventoryEntry{}
	for i := range inv.Artifacts {
		a := &inv.Artifacts[i]
		byID[string(a.Kind)+" "+a.Address] = a
	}
	bind := func(kind item.Kind, address, repo string) {
		e, ok := byID[string(kind)+" "+address]
		if !ok {
			return
		}
		b.byRepo[repo] = e
		set := map[digest.Digest]descriptor.Descriptor{}
		for _, v := range e.Versions {
			set[v.Digest] = descriptor.Descriptor{MediaType: v.MediaType, Digest: v.Digest, Size: int64(len(v.Manifest))}
			for _, p := range v.Platforms {
				set[p.Manifest.Digest] = p.Manifest
				set[p.Layer.Digest] = p.Layer
			}
			if v.Layer != nil {
				set[v.Layer.Digest] = *v.Layer
			}
		}
		if len(set) > 0 {
			// Anything we pushed there references the empty config.
			set[descriptor.EmptyDigest] = manifest.EmptyConfig()
		}
		b.blobs[repo] = set
	}
	for _, p := range cfg.Providers {
		bind(item.Provider, p.Source.String(), p.Repository)
	}
	for _, m := range cfg.Modules {
		bind(item.Module, m.Source.String(), m.Repository)
	}
	return b
}

// Tags lists the inside's version tags for the identity behind repo.
func (b *Baseline) Tags(_ context.Context, repo string) ([]string, error) {
	e := b.byRepo[repo]
	if e == nil {
		return nil, nil
	}
	tags := make([]string, 0, len(e.Versions))
	for _, v := range e.Versions {
		tags = append(tags, v.Tag)
	}
	return tags, nil
}

// Manifest returns the manifest the inside has at tag.
func (b *Baseline) Manifest(_ context.Context, repo, tag string) ([]byte, descriptor.Descriptor, error) {
	if e := b.byRepo[repo]; e != nil {
		for _, v := range e.Versions {
			if v.Tag == tag {
				return []byte(v.Manifest), descriptor.Descriptor{MediaType: v.MediaType, Digest: v.Digest, Size: int64(len(v.Manifest))}, nil
			}
		}
	}
	return nil, descriptor.Descriptor{}, fmt.Errorf("baseline %s:%s: %w", repo, tag, errs.ErrNotFound)
}

// Has reports whether the inside holds a blob or manifest in the identity
// behind repo, with its descriptor.
func (b *Baseline) Has(repo string, d digest.Digest) (descriptor.Descriptor, bool) {
	got, ok := b.blobs[repo][d]
	return got, ok
}
