package manifest

import (
	"encoding/json"
	"fmt"

	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/mediatype"
)

// Parsed is what the engine reads of any OCI image manifest or index: the
// fields that decide its kind and the descriptors it references. Nil and
// empty fields are absent from the JSON.
type Parsed struct {
	MediaType    string                  `json:"mediaType"`
	ArtifactType string                  `json:"artifactType"`
	Config       *descriptor.Descriptor  `json:"config"`
	Layers       []descriptor.Descriptor `json:"layers"`
	Manifests    []descriptor.Descriptor `json:"manifests"`
	Subject      *descriptor.Descriptor  `json:"subject"`
	Annotations  map[string]string       `json:"annotations"`
}

// Parse decodes manifest bytes, refusing more than [MaxManifestSize].
func Parse(raw []byte) (*Parsed, error) {
	if len(raw) > MaxManifestSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(raw))
	}
	var p Parsed
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return &p, nil
}

// Successors are what must be in a repository before the manifest can be
// pushed there: its config, its layers and, for an index, its manifests, in
// that order. The subject is not among them: a referrer names it, it does
// not contain it.
func (p *Parsed) Successors() []descriptor.Descriptor {
	var out []descriptor.Descriptor
	if p.Config != nil {
		out = append(out, *p.Config)
	}
	out = append(out, p.Layers...)
	return append(out, p.Manifests...)
}

// Successors parses raw and returns its successors (see [Parsed.Successors]).
func Successors(raw []byte) ([]descriptor.Descriptor, error) {
	p, err := Parse(raw)
	if err != nil {
		return nil, err
	}
	return p.Successors(), nil
}

// ArtifactTypeOf returns a manifest's artifactType, "" when it has none or
// does not parse.
func ArtifactTypeOf(raw []byte) string {
	p, err := Parse(raw)
	if err != nil {
		return ""
	}
	return p.ArtifactType
}

// IsManifestMediaType reports whether a descriptor's media type names an
// OCI image manifest or index (pushed as manifests, not as blobs).
func IsManifestMediaType(mt string) bool {
	b := mediatype.Base(mt)
	return b == mediatype.OCI1Manifest || b == mediatype.OCI1ManifestList
}

// LayoutIndex encodes the index.json of an OCI image layout listing
// manifests (never nil in the output).
func LayoutIndex(manifests []descriptor.Descriptor) ([]byte, error) {
	if manifests == nil {
		manifests = []descriptor.Descriptor{}
	}
	return json.Marshal(ociIndex{SchemaVersion: 2, MediaType: mediatype.OCI1ManifestList, Manifests: manifests})
}
