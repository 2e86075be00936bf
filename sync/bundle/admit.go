package bundle

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"unicode"

	"github.com/hashicorp/go-version"
	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/errs"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/engine"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/provenance"
)

// Limits on what a bundle may claim, so a hostile file cannot exhaust
// memory: manifests are held in memory until their artifact is tagged,
// everything else is streamed or spooled to disk.
const (
	maxMetadataSize   = 64 << 20
	maxSmallEntrySize = 1 << 20 // oci-layout, index.json
	// maxManifestBytes bounds all manifests of one bundle together; ours
	// are a few kilobytes each.
	maxManifestBytes = 32 << 20
	// maxProvenanceLayers is what one release's provenance holds:
	// SHA256SUMS, its signature and the key.
	maxProvenanceLayers = 3
)

// readMetadata reads the first entry, which must be the bundle metadata,
// and returns it with its exact bytes (what the bundle signature covers).
func readMetadata(tr *tar.Reader) (*Metadata, []byte, error) {
	hdr, err := tr.Next()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: reading the first entry: %v", ErrCorrupt, err)
	}
	if err := checkHeader(hdr); err != nil {
		return nil, nil, err
	}
	if hdr.Name != MetadataFile {
		return nil, nil, fmt.Errorf("%w: first entry is %s, want %s", ErrFormat, printable(hdr.Name), MetadataFile)
	}
	if hdr.Size > maxMetadataSize {
		return nil, nil, fmt.Errorf("%w: %s is %d bytes, more than %d", ErrCorrupt, MetadataFile, hdr.Size, maxMetadataSize)
	}
	raw, err := io.ReadAll(tr)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, MetadataFile, err)
	}
	var meta Metadata
	if err := json.Unmarshal(raw, &meta); err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %v", ErrFormat, MetadataFile, err)
	}
	if meta.Format != BundleFormat {
		return nil, nil, fmt.Errorf("%w: format %s, want %q", ErrFormat, printable(meta.Format), BundleFormat)
	}
	if meta.FormatVersion != BundleFormatVersion {
		return nil, nil, fmt.Errorf("%w: bundle format version %d, this tool reads %d", ErrFormat, meta.FormatVersion, BundleFormatVersion)
	}
	return &meta, raw, nil
}

// checkHeader refuses entries that are not plain files with clean relative
// paths: links, devices, and sparse files, whose expanded content is not
// the bytes the entry stores.
func checkHeader(hdr *tar.Header) error {
	name := hdr.Name
	if hdr.Typeflag != tar.TypeReg {
		return fmt.Errorf("%w: %s is not a regular file (type %q)", ErrUnsafeEntry, printable(name), string(hdr.Typeflag))
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return fmt.Errorf("%w: %s is a sparse file", ErrUnsafeEntry, printable(name))
		}
	}
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "\\") || path.Clean(name) != name || name == ".." || strings.HasPrefix(name, "../") {
		return fmt.Errorf("%w: path %s", ErrUnsafeEntry, printable(name))
	}
	if hdr.Size < 0 {
		return fmt.Errorf("%w: %s has negative size", ErrCorrupt, printable(name))
	}
	return nil
}

// printable returns s as is when every character is printable, else
// quoted with the others escaped, so a hostile name can neither drive the
// terminal nor forge a log line.
func printable(s string) string {
	for _, r := range s {
		if !unicode.IsGraphic(r) || r == '"' || r == '\\' {
			return strconv.QuoteToGraphic(s)
		}
	}
	return s
}

// identity renders an artifact's identity for messages, escaped.
func identity(a Artifact) string {
	return string(a.Kind) + " " + printable(a.Address) + " " + printable(a.Version)
}

// mapArtifacts admits every artifact the importing plan selects, giving
// it its repository under cfg's target; anything else refuses the whole
// bundle, naming each artifact and why, before anything is uploaded.
func mapArtifacts(cfg *config.Config, meta *Metadata) ([]*importArtifact, error) {
	var arts []*importArtifact
	var problems []error
	seen := map[string]string{} // repo:tag -> identity
	var manifestBytes int64
	carried := carriedVersions(meta)
	for _, a := range meta.Artifacts {
		ia := &importArtifact{Artifact: a}
		err := admit(cfg, ia, carried)
		if err == nil {
			err = checkBlobs(a)
		}
		if err != nil {
			problems = append(problems, fmt.Errorf("artifact %s: %w", identity(a), err))
			continue
		}
		for _, b := range a.Blobs {
			if b.Manifest && b.Inside {
				manifestBytes += b.Size
			}
		}
		if other, dup := seen[ia.repo+":"+a.Tag]; dup {
			problems = append(problems, fmt.Errorf("%w: artifacts %s and %s both claim %s:%s", ErrFormat, other, identity(a), ia.repo, a.Tag))
			continue
		}
		seen[ia.repo+":"+a.Tag] = identity(a)
		ia.item = item.Result{Kind: a.Kind, Address: a.Address, Version: a.Version, Repository: ia.repo, Tag: a.Tag, Digest: a.Manifest.Digest.String()}
		arts = append(arts, ia)
	}
	if manifestBytes > maxManifestBytes {
		problems = append(problems, fmt.Errorf("%w: the bundle's manifests add up to %d bytes, more than %d", ErrCorrupt, manifestBytes, maxManifestBytes))
	}
	return arts, errors.Join(problems...)
}

// carriedVersions groups the versions a bundle carries by kind and
// address ("provider registry.opentofu.org/a/b"), the set import selects
// the newest from.
func carriedVersions(meta *Metadata) map[string][]*version.Version {
	out := map[string][]*version.Version{}
	for _, a := range meta.Artifacts {
		if v, ok := manifest.ParseStrictVersion(a.Version); ok {
			key := string(a.Kind) + " " + strings.ToLower(a.Address)
			out[key] = append(out[key], v)
		}
	}
	return out
}

// admit checks that the plan selects the artifact (its address, and its
// version under the entry's [config.Selection], the newest among the
// versions the bundle carries for that entry) and renders its repository.
// The export side planned with the same rule against this registry's
// inventory, so a bundle carrying more, or older, versions of an entry
// than its "newest" keeps was made from another plan.
func admit(cfg *config.Config, ia *importArtifact, carried map[string][]*version.Version) error {
	a := ia.Artifact
	v, ok := manifest.ParseStrictVersion(a.Version)
	if !ok || manifest.Tag(a.Version) != a.Tag {
		return fmt.Errorf("%w: version %s with tag %s", ErrFormat, printable(a.Version), printable(a.Tag))
	}
	switch a.Kind {
	case item.Provider:
		addr, err := config.ParseProviderAddr(a.Address)
		if err != nil || addr.String() != a.Address {
			return fmt.Errorf("%w: provider address %s", ErrFormat, printable(a.Address))
		}
		for i := range cfg.Providers {
			p := &cfg.Providers[i]
			if p.Source.String() != a.Address {
				continue
			}
			if !p.Constraints.Allows(a.Version) {
				return fmt.Errorf("%w: version %s is outside its constraint %q (%s:%d)", ErrNotInPlan, a.Version, p.Versions, cfg.Path, p.Line)
			}
			if !p.Selection().Keeps(v, carried[string(a.Kind)+" "+strings.ToLower(a.Address)]) {
				return fmt.Errorf("%w: version %s is not among the %d newest the plan keeps (%s:%d)", ErrNotInPlan, a.Version, p.Newest, cfg.Path, p.Line)
			}
			ia.entry, ia.repo = p, p.Repository
			return nil
		}
	case item.Module:
		addr, err := config.ParseModuleAddr(a.Address)
		if err != nil || addr.String() != a.Address {
			return fmt.Errorf("%w: module address %s", ErrFormat, printable(a.Address))
		}
		for i := range cfg.Modules {
			m := &cfg.Modules[i]
			if !strings.EqualFold(m.Source.String(), a.Address) {
				continue
			}
			if !m.Constraints.Allows(a.Version) {
				return fmt.Errorf("%w: version %s is outside its constraint %q (%s:%d)", ErrNotInPlan, a.Version, m.Versions, cfg.Path, m.Line)
			}
			if !m.Selection().Keeps(v, carried[string(a.Kind)+" "+strings.ToLower(a.Address)]) {
				return fmt.Errorf("%w: version %s is not among the %d newest the plan keeps (%s:%d)", ErrNotInPlan, a.Version, m.Newest, cfg.Path, m.Line)
			}
			ia.entry, ia.repo = m, m.Repository
			return nil
		}
	default:
		return fmt.Errorf("%w: unknown kind %s", ErrFormat, printable(string(a.Kind)))
	}
	return fmt.Errorf("%w: the plan %s has no %s entry for it", ErrNotInPlan, cfg.Path, a.Kind)
}

// checkBlobs makes sure the artifact's own manifest closes its blob list
// and that nothing in it claims more than a release could need.
func checkBlobs(a Artifact) error {
	if err := a.Manifest.Digest.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrFormat, err)
	}
	found, provFound := false, a.Provenance == nil
	layers := 0
	for _, b := range a.Blobs {
		if err := b.Digest.Validate(); err != nil {
			return fmt.Errorf("%w: %v", ErrFormat, err)
		}
		if b.Digest.Algorithm() != digest.SHA256 {
			return fmt.Errorf("%w: digest %s: only sha256 is supported", ErrFormat, b.Digest)
		}
		if b.Size < 0 || b.Manifest && b.Size > manifest.MaxManifestSize {
			return fmt.Errorf("%w: blob %s: size %d", ErrFormat, b.Digest, b.Size)
		}
		if provenance.IsLayer(b.MediaType) {
			layers++
			if b.Size > provenance.MaxLayerSize || layers > maxProvenanceLayers {
				return fmt.Errorf("%w: provenance blobs: %d of them, %s of %d bytes; a release has at most %d of at most %d bytes",
					ErrFormat, layers, b.Digest, b.Size, maxProvenanceLayers, provenance.MaxLayerSize)
			}
		}
		found = found || b.Digest == a.Manifest.Digest
		provFound = provFound || b.Manifest && b.Digest == a.Provenance.Digest
	}
	if !found {
		return fmt.Errorf("%w: its manifest %s is not among its blobs", ErrFormat, a.Manifest.Digest)
	}
	if !provFound {
		return fmt.Errorf("%w: its provenance %s is not among its manifests", ErrFormat, a.Provenance.Digest)
	}
	return nil
}

// classify finds which artifacts are already in place and which conflict.
func classify(ctx context.Context, tg ImportTarget, arts []*importArtifact) error {
	for _, a := range arts {
		raw, desc, err := tg.Manifest(ctx, a.repo, a.Tag)
		switch {
		case errors.Is(err, errs.ErrNotFound):
			a.pending, a.item.Action = true, item.Create
		case err != nil:
			return err
		case desc.Digest == a.Manifest.Digest:
			a.item.Action, a.item.State = item.None, item.Unchanged
		default:
			a.item.Action = item.Update
			if reason := replaceable(a, raw); reason != "" {
				a.item.Action, a.item.State = item.Skip, item.Conflicted
				a.item.Err = fmt.Errorf("%s: %w at %s:%s: %s", identity(a.Artifact), item.ErrConflict, a.repo, a.Tag, reason)
				continue
			}
			a.pending = true
		}
	}
	return nil
}

// replaceable says why an existing tag must not be replaced by the
// bundle's manifest, or "" when it may: only a provider index (as the
// planner classifies tags) whose platforms the new index all keeps (the
// bundle adds platforms).
func replaceable(a *importArtifact, existing []byte) string {
	if a.Kind != item.Provider {
		return "the tag holds another module package; module versions are never replaced"
	}
	old := engine.CompareProviderIndex(existing, nil)
	if old.State == item.Conflict {
		return old.Detail
	}
	for key, p := range old.Existing.Platforms {
		if !a.hasBlob(p.Manifest.Digest) {
			return fmt.Sprintf("the target's index has %s (%s), which the bundle's does not keep: the target changed since the inventory; take a new one", key, p.Manifest.Digest)
		}
	}
	return ""
}

func (a *importArtifact) hasBlob(d digest.Digest) bool {
	for _, b := range a.Blobs {
		if b.Digest == d {
			return true
		}
	}
	return false
}

// checkBase refuses the whole import, before anything is pushed, when a
// pending artifact expects content the target lacks.
func checkBase(ctx context.Context, tg ImportTarget, arts []*importArtifact) error {
	var missing []string
	for _, a := range arts {
		if !a.pending {
			continue
		}
		for _, b := range a.Blobs {
			if b.Inside {
				continue
			}
			var ok bool
			var err error
			if b.Manifest {
				ok, err = tg.ManifestExists(ctx, a.repo, b.Digest)
			} else {
				_, ok, err = tg.BlobExists(ctx, a.repo, descriptor.Descriptor{MediaType: b.MediaType, Digest: b.Digest, Size: b.Size})
			}
			if err != nil {
				return err
			}
			if !ok {
				missing = append(missing, fmt.Sprintf("%s needs %s (%s) in %s", identity(a.Artifact), b.Digest, printable(b.MediaType), a.repo))
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: the bundle was made against a baseline this registry does not match (or an earlier bundle was never imported); nothing was pushed:\n  %s",
			ErrBaseMissing, strings.Join(missing, "\n  "))
	}
	return nil
}
