package bundle

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient/types/descriptor"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/copygraph"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/modsource"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/provenance"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/sched"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/spool"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/target"
)

// importer streams the tar's blobs into the target through one
// copy-graph: each verified blob is pushed in the background to every
// pending artifact's repository lacking it, each manifest once its own
// children landed, so uploads keep streaming while the tar is read. From
// a plain file, blobs verify as their uploads read them (fileBlob), so
// the file is read once and the hashing runs in the uploads, in parallel.
// Referrers (provenance manifests) wait for publish: on a registry
// without the referrers API, pushing one writes a fallback tag.
type importer struct {
	tg        ImportTarget
	opts      ImportOptions
	policy    provenance.Policy
	arts      []*importArtifact
	needs     map[digest.Digest][]*importArtifact
	refs      map[digest.Digest]BlobRef // what the metadata says of each blob inside
	file      *offsetReader             // the bundle, when it is a plain file
	fileBlobs []*fileBlob               // blobs uploaded from file, verified by their uploads
	work      string                    // spool directory of this import
	manifests map[digest.Digest][]byte  // every manifest read (bounded by maxManifestBytes)
	layers    map[digest.Digest]string  // provenance layers, spooled to files
	deferred  map[digest.Digest]bool    // referrers pushed at publish
	seen      map[digest.Digest]bool

	copier *copygraph.Copier
	prov   *target.ProvenanceStore // where this target keeps provenance
	// slots bound the blob uploads in flight; reading the tar waits for
	// one, so a fast disk never piles up spooled blobs.
	slots *sched.Limit

	mu   sync.Mutex
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
			return fmt.Errorf("%w: unexpected entry %s", ErrUnsafeEntry, printable(hdr.Name))
		}
		if err := im.uploadErr(); err != nil {
			return err
		}
	}
}

// blob checks one blob entry against the metadata, and hands it on: a
// manifest to the copy-graph, a provenance layer to a spool file, a module
// package through the archive checks, anything else straight to upload.
func (im *importer) blob(ctx context.Context, hdr *tar.Header, tr *tar.Reader) error {
	d := digest.NewDigestFromEncoded(digest.SHA256, strings.TrimPrefix(hdr.Name, "blobs/sha256/"))
	if err := d.Validate(); err != nil {
		return fmt.Errorf("%w: entry %s: %v", ErrUnsafeEntry, printable(hdr.Name), err)
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
	if ref.Manifest {
		raw, err := io.ReadAll(tr)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrCorrupt, hdr.Name, err)
		}
		if got := digest.SHA256.FromBytes(raw); got != d {
			return fmt.Errorf("%w: entry %s has digest %s", ErrCorrupt, hdr.Name, got)
		}
		im.manifests[d] = raw
		return im.pushManifest(ctx, users, ref, raw)
	}
	count, done := im.progressOf(users, ref)
	if im.file != nil && !provenance.IsLayer(ref.MediaType) && im.moduleOf(users, ref) == nil {
		// A bundle read from a plain file: the entry is not read here
		// (archive/tar seeks past it) but by each upload, from the file,
		// through the hash; see fileBlob.
		fb := &fileBlob{f: im.file.f, offset: im.file.offset, size: ref.Size, digest: d, name: hdr.Name, progress: count}
		im.fileBlobs = append(im.fileBlobs, fb)
		src := func() (io.Reader, error) { return fb.reader(), nil }
		return im.upload(ctx, users, ref, src, endPackage(nil, done), fb.cause)
	}
	content, release, err := im.take(hdr, tr, d, ref, countWriter(count))
	if err != nil {
		done()
		return err
	}
	release = endPackage(release, done)
	if err := im.checkModules(users, ref, content); err != nil {
		if release != nil {
			_ = release()
		}
		return err
	}
	return im.upload(ctx, users, ref, content, release, nil)
}

// verifyFileBlobs hashes the file-backed blobs no upload read (the
// target had them already), so a damaged bundle fails whatever the
// target holds.
func (im *importer) verifyFileBlobs() error {
	for _, fb := range im.fileBlobs {
		if err := fb.verify(); err != nil {
			return err
		}
	}
	return nil
}

// take reads a blob entry through the hash and returns where its verified
// bytes can be read again: the bundle file itself, a spool file, or (for a
// provenance layer) a file kept until publish. The bytes read are also
// written to count (progress).
func (im *importer) take(hdr *tar.Header, tr *tar.Reader, d digest.Digest, ref BlobRef, count io.Writer) (copygraph.Source, func() error, error) {
	h := sha256.New()
	check := func(n int64, err error) error {
		if err != nil {
			return fmt.Errorf("%w: %s: %v (truncated bundle?)", ErrCorrupt, hdr.Name, err)
		}
		if n != ref.Size {
			return fmt.Errorf("%w: entry %s holds %d bytes, the metadata says %d", ErrCorrupt, hdr.Name, n, ref.Size)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != d.Encoded() {
			return fmt.Errorf("%w: entry %s has digest sha256:%s", ErrCorrupt, hdr.Name, got)
		}
		return nil
	}
	if provenance.IsLayer(ref.MediaType) {
		path := filepath.Join(im.work, d.Encoded())
		f, err := os.Create(path)
		if err != nil {
			return nil, nil, fmt.Errorf("spool: %w", err)
		}
		n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(tr, provenance.MaxLayerSize+1))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err := check(n, err); err != nil {
			return nil, nil, err
		}
		im.layers[d] = path
		return func() (io.Reader, error) { return os.Open(path) }, nil, nil
	}
	if im.file != nil {
		// A bundle read from a plain file: hash the entry as it streams by,
		// then upload it from the file itself, with no spool copy. The
		// bytes read from the file must be exactly the entry's: what is
		// hashed is what is uploaded.
		offset := im.file.offset
		n, err := io.Copy(io.MultiWriter(h, count), tr)
		if err == nil && im.file.offset-offset != n {
			err = fmt.Errorf("the entry's data is %d bytes in the file but %d once read", im.file.offset-offset, n)
		}
		if err := check(n, err); err != nil {
			return nil, nil, err
		}
		return copygraph.File(io.NewSectionReader(im.file.f, offset, ref.Size), ref.Size), nil, nil
	}
	f, err := spool.File(im.opts.SpoolDir)
	if err != nil {
		return nil, nil, err
	}
	n, err := io.Copy(io.MultiWriter(f, h, count), tr)
	if err := check(n, err); err != nil {
		_ = f.Close()
		return nil, nil, err
	}
	return copygraph.File(f, ref.Size), f.Close, nil
}

// total counts the packages (zip layers) the pending artifacts still need.
func (im *importer) total() *item.Total {
	t := &item.Total{}
	for d, users := range im.needs {
		if ref := im.refs[d]; ref.MediaType == manifest.ZipLayerMediaType && slices.ContainsFunc(users, func(a *importArtifact) bool { return a.pending }) {
			t.Packages++
			t.Bytes += ref.Size
		}
	}
	return t
}

// progressOf reports a package (a zip layer) as one of the first pending
// artifact that needs it: a counter of its bytes as they are read from
// the bundle, and the end of its upload. Other blobs report nothing.
func (im *importer) progressOf(users []*importArtifact, ref BlobRef) (func(int64), func()) {
	if ref.MediaType != manifest.ZipLayerMediaType {
		return func(int64) {}, func() {}
	}
	for _, a := range users {
		if a.pending {
			p := item.Package{Address: a.Address, Version: a.Version, Name: ref.Digest.Encoded()[:12], Size: ref.Size}
			im.opts.Progress(item.Event{Package: &p})
			end := func() { e := p; e.Done = true; im.opts.Progress(item.Event{Package: &e}) }
			return func(n int64) { im.opts.Progress(item.Event{Bytes: n, Package: &p}) }, end
		}
	}
	return func(int64) {}, func() {}
}

// endPackage runs done when release would run (release may be nil).
func endPackage(release func() error, done func()) func() error {
	return func() error {
		done()
		if release != nil {
			return release()
		}
		return nil
	}
}

// countWriter counts the bytes written through it.
type countWriter func(int64)

func (c countWriter) Write(b []byte) (int, error) {
	c(int64(len(b)))
	return len(b), nil
}

// checkModules runs a module package through the archive checks sync
// applies to what it fetches (paths escaping, links leaving the package,
// size, ratio and entry limits) before a byte of it is uploaded.
func (im *importer) checkModules(users []*importArtifact, ref BlobRef, content copygraph.Source) error {
	mod := im.moduleOf(users, ref)
	if mod == nil {
		return nil
	}
	r, err := content()
	if err != nil {
		return err
	}
	if c, ok := r.(io.Closer); ok {
		defer c.Close()
	}
	ra, ok := r.(io.ReaderAt)
	if !ok {
		return fmt.Errorf("module %s: package is not seekable", identity(mod.Artifact))
	}
	dir, err := os.MkdirTemp(im.work, "module-*")
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	format, err := modsource.Extract(ra, ref.Size, dir, im.opts.ModuleLimits)
	if err == nil && format != "zip" {
		err = fmt.Errorf("the archive/zip layer is a %s archive", format)
	}
	if err != nil {
		return fmt.Errorf("%w: %s: layer %s: %w; nothing was imported", ErrUnsafeModule, identity(mod.Artifact), ref.Digest, err)
	}
	return nil
}

// moduleOf is the module a blob is the package of, the one blob the
// archive checks read; nil for any other blob.
func (im *importer) moduleOf(users []*importArtifact, ref BlobRef) *importArtifact {
	if ref.MediaType != manifest.ZipLayerMediaType {
		return nil // a config blob; OpenTofu reads only the zip
	}
	for _, a := range users {
		if a.Kind == item.Module {
			return a
		}
	}
	return nil
}

// upload pushes a blob to every pending artifact's repository, in the
// background, reading content from its start for each; release (may be
// nil) runs once all are done. It waits for an upload slot first. content
// is verified already, or verifies itself as it is read (a fileBlob);
// then cause (else nil) says why it did not, which is the error an upload
// failing on it reports.
func (im *importer) upload(ctx context.Context, users []*importArtifact, ref BlobRef, content copygraph.Source, release func() error, cause func() error) error {
	if err := im.slots.Acquire(ctx); err != nil {
		if release != nil {
			_ = release()
		}
		return fmt.Errorf("%w: %w", item.ErrInterrupted, err)
	}
	desc := descriptor.Descriptor{MediaType: ref.MediaType, Digest: ref.Digest, Size: ref.Size}
	repos := im.pendingRepos(users)
	var left sync.WaitGroup
	left.Add(len(repos))
	for _, u := range repos {
		im.copier.GoBlob(ctx, u.repo, desc, content, false, func(n int64, err error) {
			defer left.Done()
			if err != nil && cause != nil && cause() != nil {
				err = cause() // the bundle is damaged, whatever the registry made of it
			}
			if err != nil {
				im.fail(fmt.Errorf("%s: %w", identity(u.Artifact), err))
				return
			}
			im.addUploaded(u, n)
		})
	}
	go func() {
		left.Wait()
		if release != nil {
			_ = release()
		}
		im.slots.Release()
	}()
	return nil
}

// pendingRepos picks, of the artifacts using a blob, one pending artifact
// per repository: a blob is pushed once per repository.
func (im *importer) pendingRepos(users []*importArtifact) []*importArtifact {
	var out []*importArtifact
	done := map[string]bool{}
	for _, a := range users {
		if a.pending && !done[a.repo] {
			done[a.repo] = true
			out = append(out, a)
		}
	}
	return out
}

func (im *importer) addUploaded(a *importArtifact, n int64) {
	im.mu.Lock()
	a.item.Uploaded += n
	im.mu.Unlock()
}

// pushManifest pushes a manifest to every pending artifact's repository
// in the background, each once its own children have landed there
// (registries refuse a manifest whose blobs or child manifests they lack).
// A referrer waits for publish.
func (im *importer) pushManifest(ctx context.Context, users []*importArtifact, ref BlobRef, raw []byte) error {
	parsed, err := manifest.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: manifest %s: %v", ErrCorrupt, ref.Digest, err)
	}
	if _, detached := manifest.ProvenanceSubject(raw); parsed.Subject != nil || detached {
		// A referrer, or provenance kept without subject: nothing of a
		// version reaches the target before it verified as a whole.
		im.deferred[ref.Digest] = true
		return nil
	}
	if im.uploadErr() != nil {
		return nil // the import fails; nothing more is pushed
	}
	art := manifest.Artifact{Descriptor: descriptor.Descriptor{MediaType: ref.MediaType, Digest: ref.Digest, Size: ref.Size}, Raw: raw}
	for _, u := range im.pendingRepos(users) {
		im.copier.GoManifest(ctx, u.repo, art, func(err error) {
			if err != nil {
				im.fail(fmt.Errorf("%s: %w", identity(u.Artifact), err))
				return
			}
			im.addUploaded(u, ref.Size)
		})
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
				missing = append(missing, fmt.Sprintf("%s (%s)", b.Digest, identity(a.Artifact)))
			}
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("%w: the bundle ended without: %s (truncated bundle?)", ErrCorrupt, strings.Join(missing, ", "))
	}
	return nil
}

// publish checks a provider version as a whole, pushes its provenance,
// then writes the tag.
func (im *importer) publish(ctx context.Context, a *importArtifact) {
	fail := func(err error) { a.item.Fail(fmt.Errorf("%s: %w", identity(a.Artifact), err)) }
	if a.Kind == item.Provider {
		warnings, err := im.checkProvider(ctx, a)
		a.item.Warnings = append(a.item.Warnings, warnings...)
		if err != nil {
			fail(err)
			return
		}
		if a.Provenance != nil {
			// Written in this target's form (target.provenance and what
			// it refuses), whatever form the bundle carries.
			raw := im.manifests[a.Provenance.Digest]
			art := manifest.Artifact{Descriptor: descriptor.Descriptor{MediaType: a.Provenance.MediaType, Digest: a.Provenance.Digest, Size: int64(len(raw))}, Raw: raw}
			form, warnings, err := im.copier.Provenance(ctx, a.repo, im.prov, a.Manifest, art)
			a.item.Warnings = append(a.item.Warnings, warnings...)
			if err != nil {
				fail(err)
				return
			}
			if form != target.FormNone {
				a.item.Uploaded += art.Descriptor.Size
			}
		}
	}
	raw := im.manifests[a.Manifest.Digest]
	art := manifest.Artifact{Descriptor: descriptor.Descriptor{MediaType: a.Manifest.MediaType, Digest: a.Manifest.Digest, Size: a.Manifest.Size}, Raw: raw}
	if err := im.copier.Tag(ctx, a.repo, art, a.Tag); err != nil {
		fail(err)
		return
	}
	a.item.State = item.Done
	im.opts.Logger.Info("imported", "kind", string(a.Kind), "address", a.Address, "version", a.Version, "repository", a.repo, "tag", a.Tag)
}

// checkProvider checks the index about to be tagged as a whole: each of
// its platforms, carried in the bundle or already in the target (so an
// untagged manifest left by an earlier, refused import cannot ride along),
// must be one the plan wants or the tag already had, and its package must
// be the file the carried SHA256SUMS lists for this provider, version and
// platform, signed by a key the policy trusts.
func (im *importer) checkProvider(ctx context.Context, a *importArtifact) ([]string, error) {
	info, err := manifest.ParseProviderIndex(im.manifests[a.Manifest.Digest])
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProvenance, err)
	}
	entry := a.entry.(*config.Provider)
	allowed := map[string]bool{}
	for _, p := range entry.Platforms {
		allowed[p.String()] = true
	}
	if raw, _, err := im.tg.Manifest(ctx, a.repo, a.Tag); err == nil {
		if old := manifestPlatforms(raw); old != nil {
			maps.Copy(allowed, old)
		}
	}
	layers := map[string]descriptor.Descriptor{}
	for _, key := range info.PlatformKeys() {
		if !allowed[key] {
			return nil, fmt.Errorf("%w: platform %s is not among the plan's platforms for %s", ErrNotInPlan, key, a.Address)
		}
		p := info.Platforms[key]
		praw, carried := im.manifests[p.Manifest.Digest]
		if !carried {
			if praw, _, err = im.tg.ManifestByDigest(ctx, a.repo, p.Manifest.Digest); err != nil {
				return nil, fmt.Errorf("%w: %s: platform manifest %s: %w", ErrProvenance, key, p.Manifest.Digest, err)
			}
		}
		layer, err := manifest.ProviderTargetLayer(praw)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrProvenance, key, err)
		}
		layers[key] = layer
	}
	if a.Provenance == nil {
		if im.policy.MayBeUnsigned(a.Address) {
			return []string{"the bundle carries no signed SHA256SUMS; accepted because trust.allow_unsigned_providers names " + a.Address}, nil
		}
		return nil, fmt.Errorf("%w: the bundle carries no signed SHA256SUMS for it", ErrProvenance)
	}
	prov, unsigned, err := im.policy.CheckRelease(a.Address, a.Version, im.manifests[a.Provenance.Digest], a.Manifest.Digest, im.readLayer, layers)
	if err != nil {
		return nil, fmt.Errorf("%w: provenance %s: %w", ErrProvenance, a.Provenance.Digest, err)
	}
	for _, key := range slices.Sorted(maps.Keys(unsigned)) {
		return nil, fmt.Errorf("%w: %s: %w", ErrProvenance, key, unsigned[key])
	}
	return prov.Warnings, nil
}

// readLayer reads a provenance layer spooled while streaming.
func (im *importer) readLayer(l descriptor.Descriptor) ([]byte, error) {
	path, ok := im.layers[l.Digest]
	if !ok {
		return nil, errors.New("not in the bundle")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if digest.SHA256.FromBytes(raw) != l.Digest {
		return nil, fmt.Errorf("spooled layer %s changed", l.Digest)
	}
	return raw, nil
}

// manifestPlatforms lists the platforms of a provider index, nil for
// anything else.
func manifestPlatforms(raw []byte) map[string]bool {
	info, err := manifest.ParseProviderIndex(raw)
	if err != nil {
		return nil
	}
	out := map[string]bool{}
	for k := range info.Platforms {
		out[k] = true
	}
	return out
}
