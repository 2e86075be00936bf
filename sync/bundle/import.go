package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	gosync "sync"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/errs"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync"
)

// ImportTarget is what Import needs of the registry.
type ImportTarget interface {
	sync.Publisher
	Manifest(ctx context.Context, repo, tag string) ([]byte, descriptor.Descriptor, error)
	ManifestExists(ctx context.Context, repo string, d digest.Digest) (bool, error)
}

// ImportOptions configure [Import].
type ImportOptions struct {
	Logger      *slog.Logger
	SpoolDir    string // where blobs wait between the tar and the registry (default: temp dir)
	Concurrency int    // blob uploads in flight (default 4)
	// Progress receives a Total once the bundle is checked against the
	// target, then the Package events of each package-sized blob (nil: none).
	Progress func(sync.Event)
}

// Limits on what a bundle may claim, so a hostile file cannot exhaust memory.
const (
	maxMetadataSize   = 64 << 20
	maxSmallEntrySize = 1 << 20 // oci-layout, index.json
)

// importArtifact is one artifact of the bundle and what becomes of it here.
type importArtifact struct {
	Artifact
	repo    string
	item    sync.ItemResult
	pending bool
}

// Import verifies a bundle streamed from r and publishes it into tg,
// mapping identities to repositories with cfg's target. Nothing becomes
// visible before everything was read and checked: blobs and manifests are
// pushed by digest while streaming (invisible to OpenTofu), tags only
// after the whole bundle verified. A damaged bundle or a missing base
// returns an error and tags nothing; per-artifact failures (a provenance
// that no longer verifies, a conflicting tag) are in the result.
func Import(ctx context.Context, cfg *config.Config, tg ImportTarget, r io.Reader, opts ImportOptions) (*sync.Result, error) {
	res, err := importStream(ctx, cfg, tg, r, opts)
	if d, ok := r.(interface{ Diagnose() error }); ok && err != nil {
		if cause := d.Diagnose(); cause != nil {
			err = fmt.Errorf("%w (which broke the import: %v)", cause, err)
		}
	}
	return res, err
}

func importStream(ctx context.Context, cfg *config.Config, tg ImportTarget, r io.Reader, opts ImportOptions) (*sync.Result, error) {
	if opts.SpoolDir != "" {
		if fi, err := os.Stat(opts.SpoolDir); err != nil || !fi.IsDir() {
			return &sync.Result{Start: time.Now(), End: time.Now()}, fmt.Errorf("spool directory %s: not a directory (%v)", opts.SpoolDir, err)
		}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	if opts.Progress == nil {
		opts.Progress = func(sync.Event) {}
	}
	res := &sync.Result{Start: time.Now()}
	defer func() { res.End = time.Now() }()
	var file *offsetReader
	if f, ok := r.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			file = &offsetReader{f: f}
			r = file
		}
	}
	tr := tar.NewReader(r)
	meta, err := readMetadata(tr)
	if err != nil {
		return res, err
	}
	arts, err := mapArtifacts(cfg, meta)
	if err != nil {
		return res, err
	}
	if err := classify(ctx, tg, arts); err != nil {
		return res, err
	}
	if err := checkBase(ctx, tg, arts); err != nil {
		return res, err
	}
	im := &importer{tg: tg, opts: opts, arts: arts, file: file, needs: map[digest.Digest][]*importArtifact{}, refs: map[digest.Digest]BlobRef{}, landed: map[digest.Digest]chan struct{}{},
		manifests: map[digest.Digest][]byte{}, small: map[digest.Digest][]byte{}, seen: map[digest.Digest]bool{},
		sem: make(chan struct{}, opts.Concurrency)}
	for _, a := range arts {
		for _, b := range a.Blobs {
			if b.Inside {
				im.needs[b.Digest] = append(im.needs[b.Digest], a)
				im.refs[b.Digest] = b
			}
		}
	}
	opts.Progress(sync.Event{Total: im.total()})
	streamErr := im.stream(ctx, tr)
	im.wg.Wait()
	if streamErr == nil {
		streamErr = im.uploadErr()
	}
	if streamErr == nil {
		streamErr = im.checkComplete()
	}
	if streamErr != nil {
		// Nothing was tagged: the next import of a good bundle resumes
		// without uploading again what got in.
		for _, a := range arts {
			if a.pending {
				a.item.State, a.item.Err = sync.ItemFailed, streamErr
			}
		}
		res.Items = items(arts)
		return res, streamErr
	}
	for _, a := range arts {
		if !a.pending {
			continue
		}
		im.publish(ctx, a)
	}
	res.Items = items(arts)
	return res, nil
}

func items(arts []*importArtifact) []sync.ItemResult {
	out := make([]sync.ItemResult, len(arts))
	for i, a := range arts {
		out[i] = a.item
		if a.item.Err != nil {
			out[i].Error = a.item.Err.Error()
		}
	}
	return out
}

// readMetadata reads the first entry, which must be the bundle metadata.
func readMetadata(tr *tar.Reader) (*Metadata, error) {
	hdr, err := tr.Next()
	if err != nil {
		return nil, fmt.Errorf("%w: reading the first entry: %v", ErrCorrupt, err)
	}
	if err := checkHeader(hdr); err != nil {
		return nil, err
	}
	if hdr.Name != MetadataFile {
		return nil, fmt.Errorf("%w: first entry is %q, want %s", ErrFormat, hdr.Name, MetadataFile)
	}
	if hdr.Size > maxMetadataSize {
		return nil, fmt.Errorf("%w: %s is %d bytes, more than %d", ErrCorrupt, MetadataFile, hdr.Size, maxMetadataSize)
	}
	raw, err := io.ReadAll(tr)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, MetadataFile, err)
	}
	var meta Metadata
	if err := json.Unmarshal(raw, &meta); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrFormat, MetadataFile, err)
	}
	if meta.Format != BundleFormat {
		return nil, fmt.Errorf("%w: format %q, want %q", ErrFormat, meta.Format, BundleFormat)
	}
	if meta.FormatVersion != BundleFormatVersion {
		return nil, fmt.Errorf("%w: bundle format version %d, this tool reads %d", ErrFormat, meta.FormatVersion, BundleFormatVersion)
	}
	return &meta, nil
}

// checkHeader refuses entries that are not plain files with clean relative paths.
func checkHeader(hdr *tar.Header) error {
	name := hdr.Name
	if hdr.Typeflag != tar.TypeReg {
		return fmt.Errorf("%w: %q is not a regular file (type %q)", ErrUnsafeEntry, name, string(hdr.Typeflag))
	}
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "\\") || path.Clean(name) != name || name == ".." || strings.HasPrefix(name, "../") {
		return fmt.Errorf("%w: path %q", ErrUnsafeEntry, name)
	}
	if hdr.Size < 0 {
		return fmt.Errorf("%w: %q has negative size", ErrCorrupt, name)
	}
	return nil
}

// mapArtifacts gives every artifact its repository under cfg's target.
func mapArtifacts(cfg *config.Config, meta *Metadata) ([]*importArtifact, error) {
	var arts []*importArtifact
	var problems []error
	seen := map[string]string{} // repo:tag -> identity
	for _, a := range meta.Artifacts {
		repo, err := repositoryFor(cfg, a)
		if err == nil && (!isVersion(a.Version) || manifest.Tag(a.Version) != a.Tag) {
			err = fmt.Errorf("version %q with tag %q", a.Version, a.Tag)
		}
		if err == nil {
			err = checkBlobs(a)
		}
		if err != nil {
			problems = append(problems, fmt.Errorf("%w: artifact %s: %v", ErrFormat, a.Identity(), err))
			continue
		}
		if other, dup := seen[repo+":"+a.Tag]; dup {
			problems = append(problems, fmt.Errorf("%w: artifacts %s and %s both claim %s:%s", ErrFormat, other, a.Identity(), repo, a.Tag))
			continue
		}
		seen[repo+":"+a.Tag] = a.Identity()
		ia := &importArtifact{Artifact: a, repo: repo}
		ia.item = sync.ItemResult{Kind: a.Kind, Address: a.Address, Version: a.Version, Repository: repo, Tag: a.Tag, Digest: a.Manifest.Digest.String()}
		arts = append(arts, ia)
	}
	return arts, errors.Join(problems...)
}

func repositoryFor(cfg *config.Config, a Artifact) (string, error) {
	switch a.Kind {
	case "provider":
		addr, err := config.ParseProviderAddr(a.Address)
		if err != nil {
			return "", err
		}
		return config.RenderProviderRepository(cfg.Target.ProvidersRepository, addr)
	case "module":
		addr, err := config.ParseModuleAddr(a.Address)
		if err != nil {
			return "", err
		}
		return config.RenderModuleRepository(cfg.Target.ModulesRepository, addr)
	}
	return "", fmt.Errorf("unknown kind %q", a.Kind)
}

// checkBlobs makes sure the artifact's own manifest closes its blob list.
func checkBlobs(a Artifact) error {
	if err := a.Manifest.Digest.Validate(); err != nil {
		return err
	}
	found := false
	for _, b := range a.Blobs {
		if err := b.Digest.Validate(); err != nil {
			return err
		}
		if b.Digest.Algorithm() != digest.SHA256 {
			return fmt.Errorf("digest %s: only sha256 is supported", b.Digest)
		}
		if b.Size < 0 || b.Manifest && b.Size > manifest.MaxManifestSize {
			return fmt.Errorf("blob %s: size %d", b.Digest, b.Size)
		}
		found = found || b.Digest == a.Manifest.Digest
	}
	if !found {
		return fmt.Errorf("its manifest %s is not among its blobs", a.Manifest.Digest)
	}
	return nil
}

// classify finds which artifacts are already in place and which conflict.
func classify(ctx context.Context, tg ImportTarget, arts []*importArtifact) error {
	for _, a := range arts {
		raw, desc, err := tg.Manifest(ctx, a.repo, a.Tag)
		switch {
		case errors.Is(err, errs.ErrNotFound):
			a.pending, a.item.Action = true, "create"
		case err != nil:
			return err
		case desc.Digest == a.Manifest.Digest:
			a.item.Action, a.item.State = "none", sync.ItemUnchanged
		default:
			a.item.Action = "update"
			if reason := replaceable(a, raw); reason != "" {
				a.item.Action, a.item.State = "skip", sync.ItemConflict
				a.item.Err = fmt.Errorf("%s: %w at %s:%s: %s", a.Identity(), sync.ErrConflict, a.repo, a.Tag, reason)
				continue
			}
			a.pending = true
		}
	}
	return nil
}

// replaceable says why an existing tag must not be replaced by the
// bundle's manifest, or "" when it may: only a provider index whose
// platforms the new index all keeps (the bundle adds platforms).
func replaceable(a *importArtifact, existing []byte) string {
	if a.Kind != "provider" {
		return "the tag holds another module package; module versions are never replaced"
	}
	old, err := manifest.ParseProviderIndex(existing)
	if err != nil {
		return err.Error()
	}
	for key, p := range old.Platforms {
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
				missing = append(missing, fmt.Sprintf("%s needs %s (%s) in %s", a.Identity(), b.Digest, b.MediaType, a.repo))
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: the bundle was made against a baseline this registry does not match (or an earlier bundle was never imported); nothing was pushed:\n  %s",
			ErrBaseMissing, strings.Join(missing, "\n  "))
	}
	return nil
}

// importer streams the tar's blobs into the target.
type importer struct {
	tg        ImportTarget
	opts      ImportOptions
	arts      []*importArtifact
	needs     map[digest.Digest][]*importArtifact
	refs      map[digest.Digest]BlobRef       // what the metadata says of each blob inside
	landed    map[digest.Digest]chan struct{} // pushes under way, closed when done
	file      *offsetReader                   // the bundle, when it is a plain file
	manifests map[digest.Digest][]byte        // every manifest read, for publishing and provenance
	small     map[digest.Digest][]byte        // provenance layers
	seen      map[digest.Digest]bool

	sem  chan struct{}
	wg   gosync.WaitGroup
	mu   gosync.Mutex
	errs []error
}

func (im *importer) stream(ctx context.Context, tr *tar.Reader) error {
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %v (truncated bundle?)", ErrCorrupt, err)
		}
		if err := checkHeader(hdr); err != nil {
			return err
		}
		switch {
		case hdr.Name == "oci-layout" || hdr.Name == "index.json":
			if hdr.Size > maxSmallEntrySize {
				return fmt.Errorf("%w: %s is %d bytes", ErrCorrupt, hdr.Name, hdr.Size)
			}
			if _, err := io.Copy(io.Discard, tr); err != nil {
				return fmt.Errorf("%w: %s: %v", ErrCorrupt, hdr.Name, err)
			}
		case strings.HasPrefix(hdr.Name, "blobs/sha256/"):
			if err := im.blob(ctx, hdr, tr); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%w: unexpected entry %q", ErrUnsafeEntry, hdr.Name)
		}
		if err := im.uploadErr(); err != nil {
			return err
		}
	}
}

func (im *importer) blob(ctx context.Context, hdr *tar.Header, tr *tar.Reader) error {
	d := digest.NewDigestFromEncoded(digest.SHA256, strings.TrimPrefix(hdr.Name, "blobs/sha256/"))
	if err := d.Validate(); err != nil {
		return fmt.Errorf("%w: entry %q: %v", ErrUnsafeEntry, hdr.Name, err)
	}
	users := im.needs[d]
	ref, known := im.refs[d]
	if !known {
		return fmt.Errorf("%w: entry %s is not listed in the metadata", ErrCorrupt, hdr.Name)
	}
	if im.seen[d] {
		return fmt.Errorf("%w: entry %s appears twice", ErrCorrupt, hdr.Name)
	}
	im.seen[d] = true
	if hdr.Size != ref.Size {
		return fmt.Errorf("%w: entry %s is %d bytes, the metadata says %d", ErrCorrupt, hdr.Name, hdr.Size, ref.Size)
	}
	keep := isSmall(ref)
	if keep {
		raw, err := io.ReadAll(tr)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrCorrupt, hdr.Name, err)
		}
		if got := digest.SHA256.FromBytes(raw); got != d {
			return fmt.Errorf("%w: entry %s has digest %s", ErrCorrupt, hdr.Name, got)
		}
		if ref.Manifest {
			im.manifests[d] = raw
			im.pushManifestWhenReady(ctx, users, ref, raw)
			return nil
		}
		im.small[d] = raw
		im.upload(ctx, users, ref, bytes.NewReader(raw), nil)
		return nil
	}
	counter, done := im.progressOf(users, ref)
	if im.file != nil {
		// A bundle read from a plain file: hash the entry as it streams by,
		// then upload it from the file itself, with no spool copy.
		offset := im.file.offset
		h := sha256.New()
		if _, err := io.Copy(io.MultiWriter(h, counter), tr); err != nil {
			return fmt.Errorf("%w: %s: %v (truncated bundle?)", ErrCorrupt, hdr.Name, err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != d.Encoded() {
			return fmt.Errorf("%w: entry %s has digest sha256:%s", ErrCorrupt, hdr.Name, got)
		}
		im.upload(ctx, users, ref, io.NewSectionReader(im.file.f, offset, ref.Size), func() error { done(); return nil })
		return nil
	}
	f, err := sync.SpoolFile(im.opts.SpoolDir)
	if err != nil {
		return err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h, counter), tr)
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("%w: %s: %v (truncated bundle?)", ErrCorrupt, hdr.Name, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != d.Encoded() {
		_ = f.Close()
		return fmt.Errorf("%w: entry %s has digest sha256:%s", ErrCorrupt, hdr.Name, got)
	}
	im.upload(ctx, users, ref, f, func() error { done(); return f.Close() })
	return nil
}

// total counts the packages (zip layers) the pending artifacts still need.
func (im *importer) total() *sync.Total {
	t := &sync.Total{}
	for d, users := range im.needs {
		if ref := im.refs[d]; ref.MediaType == manifest.ZipLayerMediaType && slices.ContainsFunc(users, func(a *importArtifact) bool { return a.pending }) {
			t.Packages++
			t.Bytes += ref.Size
		}
	}
	return t
}

// isSmall says whether a blob is read into memory: manifests and provenance files.
func isSmall(ref BlobRef) bool {
	return ref.Manifest || isProvenanceLayer(ref.MediaType) && ref.Size <= sync.MaxProvenanceLayerSize
}

// progressOf reports a package (a zip layer) as one of the first pending
// artifact that needs it: a writer counting its bytes, and the end of its upload.
func (im *importer) progressOf(users []*importArtifact, ref BlobRef) (io.Writer, func()) {
	for _, a := range users {
		if a.pending && ref.MediaType == manifest.ZipLayerMediaType {
			p := sync.Package{Address: a.Address, Version: a.Version, Name: ref.Digest.Encoded()[:12], Size: ref.Size}
			im.opts.Progress(sync.Event{Package: &p})
			return progressCounter{p: &p, report: im.opts.Progress}, func() { end := p; end.Done = true; im.opts.Progress(sync.Event{Package: &end}) }
		}
	}
	return io.Discard, func() {}
}

// progressCounter reports the bytes written through it as one package's.
type progressCounter struct {
	p      *sync.Package
	report func(sync.Event)
}

func (c progressCounter) Write(b []byte) (int, error) {
	c.report(sync.Event{Bytes: int64(len(b)), Package: c.p})
	return len(b), nil
}

func isProvenanceLayer(mt string) bool {
	return mt == manifest.SHA256SUMSMediaType || mt == manifest.SignatureMediaType || mt == manifest.PublicKeyMediaType
}

// upload pushes a verified blob to every pending artifact's repository
// that lacks it, in the background, reading content from its start for
// each; release (may be nil) runs when done.
func (im *importer) upload(ctx context.Context, users []*importArtifact, ref BlobRef, content io.ReadSeeker, release func() error) {
	landed := im.track(ref.Digest)
	im.sem <- struct{}{}
	im.wg.Add(1)
	go func() {
		defer im.wg.Done()
		defer close(landed)
		defer func() { <-im.sem }()
		if release != nil {
			defer release()
		}
		done := map[string]bool{}
		for _, a := range users {
			if !a.pending || done[a.repo] {
				continue
			}
			done[a.repo] = true
			desc := descriptor.Descriptor{MediaType: ref.MediaType, Digest: ref.Digest, Size: ref.Size}
			_, exists, err := im.tg.BlobExists(ctx, a.repo, desc)
			if err == nil && !exists {
				if _, err = content.Seek(0, io.SeekStart); err == nil {
					err = im.tg.PutBlob(ctx, a.repo, desc, content)
				}
				if err == nil {
					im.addUploaded(a, ref.Size)
				}
			}
			if err != nil {
				im.fail(fmt.Errorf("%s: %w", a.Identity(), err))
				return
			}
		}
	}()
}

func (im *importer) addUploaded(a *importArtifact, n int64) {
	im.mu.Lock()
	a.item.Uploaded += n
	im.mu.Unlock()
}

// track notes that d is being pushed; the channel closes once it is done
// (or failed), which is what manifests referring to d wait for.
func (im *importer) track(d digest.Digest) chan struct{} {
	ch := make(chan struct{})
	im.mu.Lock()
	im.landed[d] = ch
	im.mu.Unlock()
	return ch
}

// pushManifestWhenReady pushes a manifest in the background once its own
// children have landed (registries refuse a manifest whose blobs or child
// manifests they lack), so other uploads keep streaming meanwhile.
func (im *importer) pushManifestWhenReady(ctx context.Context, users []*importArtifact, ref BlobRef, raw []byte) {
	landed := im.track(ref.Digest)
	children := childDigests(raw)
	im.wg.Add(1)
	go func() {
		defer im.wg.Done()
		defer close(landed)
		for _, c := range children {
			im.mu.Lock()
			ch := im.landed[c]
			im.mu.Unlock()
			if ch != nil {
				<-ch
			}
		}
		if im.uploadErr() != nil {
			return // the import fails; nothing more is pushed
		}
		im.sem <- struct{}{}
		defer func() { <-im.sem }()
		if err := im.pushManifest(ctx, users, ref, raw); err != nil {
			im.fail(err)
		}
	}()
}

// childDigests lists what a manifest references: config, layers, manifests.
func childDigests(raw []byte) []digest.Digest {
	var m struct {
		Config    *descriptor.Descriptor  `json:"config"`
		Layers    []descriptor.Descriptor `json:"layers"`
		Manifests []descriptor.Descriptor `json:"manifests"`
	}
	_ = json.Unmarshal(raw, &m)
	var out []digest.Digest
	if m.Config != nil {
		out = append(out, m.Config.Digest)
	}
	for _, l := range append(m.Layers, m.Manifests...) {
		out = append(out, l.Digest)
	}
	return out
}

func (im *importer) pushManifest(ctx context.Context, users []*importArtifact, ref BlobRef, raw []byte) error {
	art := manifest.Artifact{Descriptor: descriptor.Descriptor{MediaType: ref.MediaType, Digest: ref.Digest, Size: ref.Size}, Raw: raw}
	done := map[string]bool{}
	for _, a := range users {
		if !a.pending || done[a.repo] {
			continue
		}
		done[a.repo] = true
		// A PUT of a manifest the registry has is harmless and as cheap
		// as asking first, so no HEAD.
		err := im.tg.PutManifest(ctx, a.repo, art, "")
		if err == nil {
			im.addUploaded(a, ref.Size)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", a.Identity(), err)
		}
	}
	return nil
}

func (im *importer) fail(err error) {
	im.mu.Lock()
	im.errs = append(im.errs, err)
	im.mu.Unlock()
}

func (im *importer) uploadErr() error {
	im.mu.Lock()
	defer im.mu.Unlock()
	return errors.Join(im.errs...)
}

// checkComplete makes sure every blob the metadata says is inside arrived.
func (im *importer) checkComplete() error {
	var missing []string
	for _, a := range im.arts {
		if !a.pending {
			continue
		}
		for _, b := range a.Blobs {
			if b.Inside && !im.seen[b.Digest] {
				missing = append(missing, fmt.Sprintf("%s (%s)", b.Digest, a.Identity()))
			}
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("%w: the bundle ended without: %s (truncated bundle?)", ErrCorrupt, strings.Join(missing, ", "))
	}
	return nil
}

// publish re-checks a provider's provenance, then writes the tag.
func (im *importer) publish(ctx context.Context, a *importArtifact) {
	start := time.Now()
	defer func() { a.item.Duration = time.Since(start) }()
	if a.Kind == "provider" {
		warnings, err := im.checkProvenance(a)
		a.item.Warnings = append(a.item.Warnings, warnings...)
		if err != nil {
			a.item.State, a.item.Err = sync.ItemFailed, fmt.Errorf("%s: %w", a.Identity(), err)
			return
		}
	}
	raw := im.manifests[a.Manifest.Digest]
	art := manifest.Artifact{Descriptor: descriptor.Descriptor{MediaType: a.Manifest.MediaType, Digest: a.Manifest.Digest, Size: a.Manifest.Size}, Raw: raw}
	if err := im.tg.PutManifest(ctx, a.repo, art, a.Tag); err != nil {
		a.item.State, a.item.Err = sync.ItemFailed, fmt.Errorf("%s: %w", a.Identity(), err)
		return
	}
	a.item.State = sync.ItemDone
	im.opts.Logger.Info("imported", "kind", a.Kind, "address", a.Address, "version", a.Version, "repository", a.repo, "tag", a.Tag)
}

// checkProvenance verifies the signed SHA256SUMS carried with a provider
// version again, and that it covers every package the bundle carries.
func (im *importer) checkProvenance(a *importArtifact) ([]string, error) {
	if a.Provenance == nil {
		return nil, fmt.Errorf("%w: the bundle carries no signed SHA256SUMS for it", ErrProvenance)
	}
	raw, ok := im.manifests[a.Provenance.Digest]
	if !ok {
		return nil, fmt.Errorf("%w: provenance manifest %s not in the bundle", ErrProvenance, a.Provenance.Digest)
	}
	prov, err := sync.CheckStoredProvenance(a.Address, raw, a.Manifest.Digest, func(l descriptor.Descriptor) ([]byte, error) {
		data, ok := im.small[l.Digest]
		if !ok {
			return nil, errors.New("not in the bundle")
		}
		return data, nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: provenance %s: %w", ErrProvenance, a.Provenance.Digest, err)
	}
	info, err := manifest.ParseProviderIndex(im.manifests[a.Manifest.Digest])
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProvenance, err)
	}
	for key, p := range info.Platforms {
		praw, carried := im.manifests[p.Manifest.Digest]
		if !carried {
			continue // already in the target from an earlier import, checked then
		}
		layer, err := manifest.ProviderTargetLayer(praw)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrProvenance, key, err)
		}
		if err := sync.CheckPackageSigned(prov, layer, a.Version, key); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrProvenance, key, err)
		}
	}
	return prov.Warnings, nil
}

// offsetReader reads a bundle file and knows where it stands, so a blob
// entry can be uploaded straight from the file once its digest checked.
// archive/tar reads no further than it must, so after Next the offset is
// the start of the entry's data.
type offsetReader struct {
	f      *os.File
	offset int64
}

func (o *offsetReader) Read(b []byte) (int, error) {
	n, err := o.f.Read(b)
	o.offset += int64(n)
	return n, err
}
