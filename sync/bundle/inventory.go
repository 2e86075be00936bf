package bundle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/errs"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/target"
)

// InventoryFormat names inventory files; InventoryFormatVersion is the format
// version this package writes and reads.
const (
	InventoryFormat        = "tofu-oci-mirror-inventory"
	InventoryFormatVersion = 1
)

// Inventory is what a target holds for a plan's providers and modules, by
// logical identity. It is small, human-readable JSON carried out of the air gap.
type Inventory struct {
	Format        string           `json:"format"`
	FormatVersion int              `json:"format_version"`
	ToolVersion   string           `json:"tool_version,omitempty"`
	Created       time.Time        `json:"created"`
	Target        string           `json:"target,omitempty"`
	Artifacts     []InventoryEntry `json:"artifacts"`
}

// InventoryEntry is one provider or module and the versions the target has.
type InventoryEntry struct {
	Kind       item.Kind          `json:"kind"`
	Address    string             `json:"address"`
	Repository string             `json:"repository"`
	Versions   []InventoryVersion `json:"versions"`
}

// InventoryVersion is one version tag and everything it references.
type InventoryVersion struct {
	Version      string        `json:"version"`
	Tag          string        `json:"tag"`
	Digest       digest.Digest `json:"digest"`
	MediaType    string        `json:"media_type"`
	ArtifactType string        `json:"artifact_type,omitempty"`
	// Manifest is the exact manifest at the tag, so the exporting planner
	// sees what a live registry would have shown it.
	Manifest string `json:"manifest"`
	// Platforms maps "os_arch" to the platform manifest and its zip layer (providers).
	Platforms map[string]InventoryPlatform `json:"platforms,omitempty"`
	// Layer is the module package zip (modules).
	Layer *descriptor.Descriptor `json:"layer,omitempty"`
}

// InventoryPlatform is one platform of a provider version.
type InventoryPlatform struct {
	Manifest descriptor.Descriptor `json:"manifest"`
	Layer    descriptor.Descriptor `json:"layer"`
}

// Reader is what TakeInventory reads from a target.
type Reader interface {
	target.Inventory
	target.ManifestFetcher
}

// TakeInventory records every version tag the target holds for the plan's
// providers and modules, with the digests each references.
func TakeInventory(ctx context.Context, cfg *config.Config, target Reader, targetName, toolVersion string) (*Inventory, error) {
	inv := &Inventory{Format: InventoryFormat, FormatVersion: InventoryFormatVersion, ToolVersion: toolVersion,
		Created: time.Now().UTC().Truncate(time.Second), Target: targetName, Artifacts: []InventoryEntry{}}
	var errs []error
	for _, p := range cfg.Providers {
		e, err := inventoryEntry(ctx, target, item.Provider, p.Source.String(), p.Repository)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		inv.Artifacts = append(inv.Artifacts, e)
	}
	for _, m := range cfg.Modules {
		e, err := inventoryEntry(ctx, target, item.Module, m.Source.String(), m.Repository)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		inv.Artifacts = append(inv.Artifacts, e)
	}
	return inv, errors.Join(errs...)
}

func inventoryEntry(ctx context.Context, target Reader, kind item.Kind, address, repo string) (InventoryEntry, error) {
	e := InventoryEntry{Kind: kind, Address: address, Repository: repo, Versions: []InventoryVersion{}}
	tags, err := target.Tags(ctx, repo)
	if err != nil {
		return e, fmt.Errorf("%s %s: %w", kind, address, err)
	}
	sort.Strings(tags)
	for _, tag := range tags {
		ver := manifest.VersionFromTag(tag)
		if !manifest.IsStrictVersion(ver) {
			continue // "latest", referrer fallback tags: OpenTofu ignores them too
		}
		raw, desc, err := target.Manifest(ctx, repo, tag)
		if errors.Is(err, errs.ErrNotFound) {
			continue
		}
		if err != nil {
			return e, fmt.Errorf("%s %s %s: %w", kind, address, ver, err)
		}
		v := InventoryVersion{Version: ver, Tag: tag, Digest: desc.Digest, MediaType: desc.MediaType, Manifest: string(raw)}
		v.ArtifactType = manifest.ArtifactTypeOf(raw)
		switch {
		case kind == item.Provider && v.ArtifactType == manifest.ProviderIndexArtifactType:
			info, err := manifest.ParseProviderIndex(raw)
			if err != nil {
				break // recorded as is: the exporting planner reports the conflict
			}
			v.Platforms = map[string]InventoryPlatform{}
			for key, pm := range info.Platforms {
				praw, _, err := target.ManifestByDigest(ctx, repo, pm.Manifest.Digest)
				if err != nil {
					return e, fmt.Errorf("%s %s %s %s: %w", kind, address, ver, key, err)
				}
				layer, err := manifest.ProviderTargetLayer(praw)
				if err != nil {
					return e, fmt.Errorf("%s %s %s %s: %w", kind, address, ver, key, err)
				}
				v.Platforms[key] = InventoryPlatform{Manifest: pm.Manifest, Layer: layer}
			}
		case kind == item.Module:
			if layer, err := manifest.ModulePackageLayer(raw); err == nil {
				v.Layer = &layer
			}
		}
		e.Versions = append(e.Versions, v)
	}
	return e, nil
}

// WriteInventory writes inv as indented JSON.
func WriteInventory(w io.Writer, inv *Inventory) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(inv)
}

// maxInventorySize bounds what ReadInventory accepts.
const maxInventorySize = 256 << 20

// ReadInventory reads an inventory file and checks its format.
func ReadInventory(path string) (*Inventory, digest.Digest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxInventorySize+1))
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	if len(raw) > maxInventorySize {
		return nil, "", fmt.Errorf("%s: %w: larger than %d bytes", path, ErrFormat, maxInventorySize)
	}
	var inv Inventory
	if err := json.Unmarshal(raw, &inv); err != nil {
		return nil, "", fmt.Errorf("%s: %w: %v", path, ErrFormat, err)
	}
	if inv.Format != InventoryFormat {
		return nil, "", fmt.Errorf("%s: %w: format %q, want %q", path, ErrFormat, inv.Format, InventoryFormat)
	}
	if inv.FormatVersion != InventoryFormatVersion {
		return nil, "", fmt.Errorf("%s: %w: inventory format version %d, this tool reads %d", path, ErrFormat, inv.FormatVersion, InventoryFormatVersion)
	}
	return &inv, digest.SHA256.FromBytes(raw), nil
}
