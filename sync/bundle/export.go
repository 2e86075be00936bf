package bundle

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient/types/descriptor"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/atomicfile"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/engine"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"
)

// ExportOptions configure [Export]. Upstream is required.
type ExportOptions struct {
	ToolVersion    string
	PlanFile       []byte        // recorded in the metadata
	BaselineDigest digest.Digest // of the inventory file; empty without a baseline
	// StageDir holds what is downloaded until the tar is written (default: a temp dir, removed after).
	StageDir string
	// Upstream is where providers and modules come from.
	Upstream engine.Upstream
	// Engine configures the engine that plans against the baseline and
	// copies into the stage (concurrency, spool, logger, progress).
	Engine []engine.Option
}

// Exported is a staged bundle ready to be written.
type Exported struct {
	Plan     *engine.Plan
	Result   *item.Run
	Metadata *Metadata
	stage    *stage
	cleanup  func()
}

// Close removes the staging directory if Export created it.
func (e *Exported) Close() { e.cleanup() }

// Export plans cfg against the baseline (what the inside holds; nil means
// nothing), downloads and verifies exactly what the inside lacks into a
// staging directory, and describes it. Write the bundle with
// [Exported.WriteTar] or [Exported.WriteParts]. Items that failed are left
// out of the bundle and reported in the result.
func Export(ctx context.Context, cfg *config.Config, inv *Inventory, opts ExportOptions) (*Exported, error) {
	dir, cleanup := opts.StageDir, func() {}
	if dir == "" {
		tmp, err := os.MkdirTemp("", "tofu-oci-mirror-export-*")
		if err != nil {
			return nil, err
		}
		dir, cleanup = tmp, func() { _ = os.RemoveAll(tmp) }
	}
	baseline := NewBaseline(inv, cfg)
	st, err := newStage(dir, baseline)
	if err != nil {
		cleanup()
		return nil, err
	}
	eng := engine.New(opts.Upstream, baseline, st, opts.Engine...)
	plan := eng.Plan(ctx, cfg, "bundle")
	res := eng.Execute(ctx, plan)
	meta := &Metadata{
		Format: BundleFormat, FormatVersion: BundleFormatVersion, ToolVersion: opts.ToolVersion,
		Created: time.Now().UTC().Truncate(time.Second), BaselineDigest: opts.BaselineDigest,
		Artifacts: []Artifact{},
	}
	if opts.PlanFile != nil {
		meta.Plan, meta.PlanDigest = string(opts.PlanFile), digest.SHA256.FromBytes(opts.PlanFile)
	}
	for _, it := range res.Items {
		if it.State != item.Done {
			continue
		}
		a, err := st.describe(it)
		if err != nil {
			cleanup()
			return nil, err
		}
		meta.Artifacts = append(meta.Artifacts, a)
	}
	sort.Slice(meta.Artifacts, func(i, j int) bool { return meta.Artifacts[i].Identity() < meta.Artifacts[j].Identity() })
	return &Exported{Plan: plan, Result: res, Metadata: meta, stage: st, cleanup: cleanup}, nil
}

// describe walks a published item from its tagged manifest down, children
// first, noting for each blob whether the bundle carries it.
func (s *stage) describe(it item.Result) (Artifact, error) {
	top := digest.Digest(it.Digest)
	desc, ok := s.isManifest(top)
	if !ok {
		return Artifact{}, fmt.Errorf("%s %s %s: manifest %s not staged", it.Kind, it.Address, it.Version, top)
	}
	a := Artifact{Kind: it.Kind, Address: it.Address, Version: it.Version, Tag: it.Tag, Manifest: desc}
	seen := map[digest.Digest]bool{}
	var walk func(d descriptor.Descriptor) error
	walk = func(d descriptor.Descriptor) error {
		if seen[d.Digest] {
			return nil
		}
		seen[d.Digest] = true
		md, isManifest := s.isManifest(d.Digest)
		if isManifest {
			kids, err := s.children(d.Digest)
			if err != nil {
				return err
			}
			for _, k := range kids {
				if err := walk(k); err != nil {
					return err
				}
			}
			d = md
		} else if manifest.IsManifestMediaType(d.MediaType) {
			isManifest = true // a manifest the inside already holds
		}
		a.Blobs = append(a.Blobs, BlobRef{Digest: d.Digest, Size: d.Size, MediaType: d.MediaType, Manifest: isManifest, Inside: s.staged(d.Digest)})
		return nil
	}
	if err := walk(desc); err != nil {
		return a, err
	}
	for _, r := range s.referrers(top) {
		if err := walk(r); err != nil {
			return a, err
		}
		p := r
		a.Provenance = &p
	}
	return a, nil
}

// metadataBytes is the metadata entry exactly as WriteTar writes it and
// Sign signs it.
func (e *Exported) metadataBytes() ([]byte, error) {
	return json.MarshalIndent(e.Metadata, "", "  ")
}

// WriteTar writes the bundle as one tar stream: metadata first, so an
// importer streaming it knows what to expect before any blob arrives.
func (e *Exported) WriteTar(w io.Writer) error {
	tw := tar.NewWriter(w)
	meta, err := e.metadataBytes()
	if err != nil {
		return err
	}
	if err := writeEntry(tw, MetadataFile, meta); err != nil {
		return err
	}
	if err := writeEntry(tw, "oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	var entries []descriptor.Descriptor
	for _, a := range e.Metadata.Artifacts {
		d := a.Manifest
		d.Annotations = map[string]string{
			"org.opencontainers.image.ref.name": a.Address + ":" + a.Tag,
			IdentityAnnotation:                  a.Identity(),
		}
		entries = append(entries, d)
	}
	raw, err := manifest.LayoutIndex(entries)
	if err != nil {
		return err
	}
	if err := writeEntry(tw, "index.json", raw); err != nil {
		return err
	}
	written := map[digest.Digest]bool{}
	for _, a := range e.Metadata.Artifacts {
		for _, b := range a.Blobs {
			if !b.Inside || written[b.Digest] {
				continue
			}
			written[b.Digest] = true
			if err := e.copyBlob(tw, b); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

func (e *Exported) copyBlob(tw *tar.Writer, b BlobRef) error {
	f, err := os.Open(e.stage.path(b.Digest))
	if err != nil {
		return err
	}
	defer f.Close()
	hdr := &tar.Header{Name: blobPath(b.Digest), Mode: 0o644, Size: b.Size, Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	n, err := io.Copy(tw, f)
	if err == nil && n != b.Size {
		err = fmt.Errorf("blob %s: staged %d bytes, expected %d", b.Digest, n, b.Size)
	}
	return err
}

func blobPath(d digest.Digest) string { return "blobs/" + d.Algorithm().String() + "/" + d.Encoded() }

func writeEntry(tw *tar.Writer, name string, data []byte) error {
	hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

// WriteFile writes the bundle to path atomically (a temp file renamed into
// place), so a failure never leaves a corrupt or empty bundle behind. With
// maxPart > 0 it writes numbered parts PATH.000, PATH.001, ... and the part
// manifest PATH.parts.json instead.
func (e *Exported) WriteFile(path string, maxPart int64) error {
	if maxPart > 0 {
		return e.writeParts(path, maxPart)
	}
	return atomicfile.Write(path, 0o644, func(w io.Writer) error { return e.WriteTar(w) })
}
