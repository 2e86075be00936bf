package bundle

import (
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"
)

// Bundle format identifiers. A bundle is a tar whose first entry is
// MetadataFile, followed by an OCI image layout (oci-layout, index.json,
// blobs/sha256/...) in push order: children before the manifests that
// reference them.
const (
	BundleFormat        = "tofu-oci-mirror-bundle"
	BundleFormatVersion = 1
	MetadataFile        = "tofu-oci-mirror-bundle.json"
	// IdentityAnnotation names an artifact in the layout's index.json by
	// logical identity, e.g. "provider registry.opentofu.org/hashicorp/null 3.2.0".
	IdentityAnnotation = "io.github.tofu-oci-mirror.identity"
)

// Metadata describes a bundle: where it came from and, per artifact, what
// is inside and what the target must already hold.
type Metadata struct {
	Format         string        `json:"format"`
	FormatVersion  int           `json:"format_version"`
	ToolVersion    string        `json:"tool_version,omitempty"`
	Created        time.Time     `json:"created"`
	Plan           string        `json:"plan,omitempty"` // the plan file the bundle was made from
	PlanDigest     digest.Digest `json:"plan_digest,omitempty"`
	BaselineDigest digest.Digest `json:"baseline_digest,omitempty"` // of the inventory; empty: exported everything
	Artifacts      []Artifact    `json:"artifacts"`
}

// Artifact is one provider or module version.
type Artifact struct {
	Kind    item.Kind `json:"kind"`
	Address string    `json:"address"`
	Version string    `json:"version"`
	Tag     string    `json:"tag"`
	// Manifest is what the tag points at: a provider index or a module manifest.
	Manifest descriptor.Descriptor `json:"manifest"`
	// Provenance is the referrer holding the signed SHA256SUMS (providers).
	Provenance *descriptor.Descriptor `json:"provenance,omitempty"`
	// Blobs is everything the artifact needs in the target, in push order.
	Blobs []BlobRef `json:"blobs"`
}

// Identity names an artifact independently of any repository layout.
func (a Artifact) Identity() string { return string(a.Kind) + " " + a.Address + " " + a.Version }

// BlobRef is one blob or manifest an artifact needs.
type BlobRef struct {
	Digest    digest.Digest `json:"digest"`
	Size      int64         `json:"size"`
	MediaType string        `json:"media_type,omitempty"`
	// Manifest is true for manifests (pushed as manifests, by digest).
	Manifest bool `json:"manifest,omitempty"`
	// Inside is true when the bundle carries it; false when the target
	// must already hold it (it was in the baseline).
	Inside bool `json:"inside"`
}

// PartsFormat names the small manifest listing the parts of a split bundle.
const PartsFormat = "tofu-oci-mirror-bundle-parts"

// Parts lists the parts of a split bundle, in order.
type Parts struct {
	Format        string `json:"format"`
	FormatVersion int    `json:"format_version"`
	Parts         []Part `json:"parts"`
}

// Part is one file of a split bundle.
type Part struct {
	Name   string `json:"name"` // file name, in the parts manifest's directory
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}
