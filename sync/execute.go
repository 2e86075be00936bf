package sync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	gosync "sync"
	"time"

	"github.com/regclient/regclient/types/descriptor"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/upstream"
)

// ProviderFetcher downloads and verifies provider packages from upstream.
type ProviderFetcher interface {
	ProviderDownload(ctx context.Context, a config.ProviderAddr, version string, p config.Platform) (*upstream.ProviderPackage, error)
	VerifyProvenance(ctx context.Context, pkg *upstream.ProviderPackage) (*upstream.Provenance, error)
	DownloadPackage(ctx context.Context, pkg *upstream.ProviderPackage, w io.Writer) (string, int64, error)
}

// Publisher writes to the target. Blobs go first, manifests by digest next,
// and the tag last, so OpenTofu never sees an incomplete version.
type Publisher interface {
	BlobExists(ctx context.Context, repo string, d descriptor.Descriptor) (descriptor.Descriptor, bool, error)
	PutBlob(ctx context.Context, repo string, d descriptor.Descriptor, rdr io.Reader) error
	PutManifest(ctx context.Context, repo string, a manifest.Artifact, tag string) error
}

// Item states in a [Result].
const (
	ItemDone      = "done"      // copied and tagged
	ItemUnchanged = "unchanged" // already complete
	ItemFailed    = "failed"    // not published; see Error
	ItemConflict  = "conflict"  // tag holds a foreign artifact; left alone
)

// ItemResult is the outcome of one provider version (or of a provider that
// could not be planned, with an empty Version).
type ItemResult struct {
	Kind       string        `json:"kind"`
	Address    string        `json:"address"`
	Version    string        `json:"version,omitempty"`
	Repository string        `json:"repository"`
	Tag        string        `json:"tag,omitempty"`
	Action     string        `json:"action"`
	State      string        `json:"state"`
	Platforms  []string      `json:"platforms,omitempty"`
	Source     string        `json:"oci_source,omitempty"` // module version in place: its oci:// address (ModuleSourceLine)
	Digest     string        `json:"digest,omitempty"`
	Downloaded int64         `json:"bytes_downloaded"`
	Uploaded   int64         `json:"bytes_uploaded"`
	Duration   time.Duration `json:"duration_ns"`
	Warnings   []string      `json:"warnings,omitempty"`
	Err        error         `json:"-"`
	Error      string        `json:"error,omitempty"`
}

// Result is what a run did.
type Result struct {
	Start time.Time    `json:"start"`
	End   time.Time    `json:"end"`
	Items []ItemResult `json:"items"`
}

// Count returns how many items ended in state.
func (r *Result) Count(state string) int {
	n := 0
	for _, it := range r.Items {
		if it.State == state {
			n++
		}
	}
	return n
}

// Bytes returns the bytes downloaded and uploaded over the run.
func (r *Result) Bytes() (downloaded, uploaded int64) {
	for _, it := range r.Items {
		downloaded += it.Downloaded
		uploaded += it.Uploaded
	}
	return downloaded, uploaded
}

// Err joins every item's failure, or returns nil when everything in the
// plan is in place. A conflict counts as a failure: the version is not there.
func (r *Result) Err() error {
	var errs []error
	for _, it := range r.Items {
		if it.Err != nil {
			errs = append(errs, it.Err)
		}
	}
	return errors.Join(errs...)
}

// Event reports progress to a user interface.
type Event struct {
	// Bytes is a count of package bytes just downloaded; negative when a
	// failed attempt's bytes are thrown away to download again.
	Bytes int64
	// Uploaded is a count of package bytes just sent to the target;
	// negative when an upload rewinds to send again.
	Uploaded int64
	// Item is set when an item has finished.
	Item *ItemResult
	// Plan is set on the first event of [Executor.Execute]: the work it starts.
	Plan *Plan
	// Package is set when a package download starts (no Bytes or
	// Uploaded, Done false), on the Bytes and Uploaded events of its
	// transfer, and when the transfer ends (Done).
	Package *Package
	// Total is set once, before any Package, by work no Plan describes
	// (a bundle import): what is about to move.
	Total *Total
}

// Package is one package download, as a user interface shows it.
type Package struct {
	Address, Version string // the item it belongs to
	Name             string // the platform; for a bundle entry, its short digest
	Size             int64  // expected bytes; 0 or less when unknown
	Done             bool   // the download and upload ended, either way
}

// Total is the size of the work ahead: packages, and their bytes (0 when unknown).
type Total struct {
	Packages int
	Bytes    int64
}

// Executor carries out a [Plan].
type Executor struct {
	fetcher     ProviderFetcher
	modules     ModuleSourceFetcher // nil: built from fetcher when it can fetch URLs
	target      *breaker
	concurrency int
	spoolDir    string
	logger      *slog.Logger
	progress    func(Event)
}

// ExecutorOption configures an [Executor].
type ExecutorOption func(*Executor)

// WithConcurrency bounds how many packages are transferred at once (default 4).
func WithConcurrency(n int) ExecutorOption {
	return func(e *Executor) {
		if n > 0 {
			e.concurrency = n
		}
	}
}

// WithSpoolDir sets where packages are spooled between download and upload
// (default: the system temp directory). Each transfer in flight holds one
// package there.
func WithSpoolDir(dir string) ExecutorOption { return func(e *Executor) { e.spoolDir = dir } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) ExecutorOption { return func(e *Executor) { e.logger = l } }

// WithProgress receives progress events; it must be safe for concurrent use.
func WithProgress(f func(Event)) ExecutorOption { return func(e *Executor) { e.progress = f } }

// NewExecutor returns an executor fetching from f and publishing to t.
func NewExecutor(f ProviderFetcher, t Publisher, opts ...ExecutorOption) *Executor {
	e := &Executor{fetcher: f, target: newBreaker(t), concurrency: 4, logger: slog.New(slog.DiscardHandler), progress: func(Event) {}}
	for _, o := range opts {
		o(e)
	}
	return e
}

// Execute copies what plan says is missing. Per-item failures are kept in
// the result and the rest continue; the result's Err says whether
// everything in the plan is now in place.
func (e *Executor) Execute(ctx context.Context, plan *Plan) *Result {
	res := &Result{Start: time.Now()}
	e.progress(Event{Plan: plan})
	CleanStaleSpool(e.spoolDir, e.logger)
	sem := make(chan struct{}, e.concurrency)
	var mu gosync.Mutex
	var wg gosync.WaitGroup
	add := func(it ItemResult) {
		if it.Err != nil {
			it.Error = it.Err.Error()
		}
		mu.Lock()
		res.Items = append(res.Items, it)
		mu.Unlock()
		e.progress(Event{Item: &it})
	}
	for pi := range plan.Providers {
		pp := &plan.Providers[pi]
		base := ItemResult{Kind: "provider", Address: pp.Address, Repository: pp.Repository}
		if pp.Err != nil {
			it := base
			it.Action, it.State, it.Err = "plan", ItemFailed, pp.Err
			add(it)
			continue
		}
		for vi := range pp.Versions {
			vp := &pp.Versions[vi]
			it := base
			it.Version, it.Tag = vp.Version, vp.Tag
			switch vp.State {
			case StateComplete:
				it.Action, it.State, it.Digest = "none", ItemUnchanged, vp.ExistingDigest
				add(it)
			case StateConflict:
				it.Action, it.State = "skip", ItemConflict
				it.Err = fmt.Errorf("provider %s %s: %w at %s:%s: %s", pp.Address, vp.Version, ErrConflict, pp.Repository, vp.Tag, vp.Detail)
				add(it)
			default:
				wg.Add(1)
				go func() {
					defer wg.Done()
					add(e.providerVersion(ctx, sem, pp, vp, it))
				}()
			}
		}
	}
	e.executeModules(ctx, plan, sem, &wg, add)
	wg.Wait()
	res.End = time.Now()
	return res
}

// platformCopy is the outcome of copying one platform package.
type platformCopy struct {
	platform   string
	entry      manifest.PlatformManifest
	provenance *upstream.Provenance
	downloaded int64
	uploaded   int64
	skipped    bool // upstream no longer offers it
	err        error
}

func (e *Executor) providerVersion(ctx context.Context, sem chan struct{}, pp *ProviderPlan, vp *ProviderVersionPlan, it ItemResult) ItemResult {
	start := time.Now()
	it.Action = "create"
	if vp.State == StateIncomplete {
		it.Action = "update"
	}
	prov := &provenanceCache{fetcher: e.fetcher}
	finish := func(err error) ItemResult {
		it.Duration = time.Since(start)
		if err != nil {
			it.State, it.Err = ItemFailed, err
			it.Platforms = nil
		} else {
			it.State = ItemDone
		}
		return it
	}
	// Registries refuse a manifest whose config blob they lack.
	if err := e.ensureBlob(ctx, pp.Repository, manifest.EmptyConfig(), descriptor.EmptyData); err != nil {
		return finish(fmt.Errorf("provider %s %s: %w", pp.Address, vp.Version, err))
	}
	copies := make([]platformCopy, len(vp.Add))
	var wg gosync.WaitGroup
	for i, key := range vp.Add {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				copies[i] = platformCopy{platform: key, err: fmt.Errorf("%w: %w", ErrInterrupted, ctx.Err())}
				return
			}
			defer func() { <-sem }()
			copies[i] = e.copyPlatform(ctx, prov, pp, vp, key)
		}()
	}
	wg.Wait()

	var entries []manifest.PlatformManifest
	var errs []error
	var provenance *upstream.Provenance
	for _, c := range copies {
		it.Downloaded += c.downloaded
		it.Uploaded += c.uploaded
		switch {
		case c.err != nil:
			errs = append(errs, c.err)
		case c.skipped:
			it.Warnings = append(it.Warnings, fmt.Sprintf("%s: upstream no longer offers this platform", c.platform))
		default:
			entries = append(entries, c.entry)
			it.Platforms = append(it.Platforms, c.platform)
			if provenance == nil {
				provenance = c.provenance
			}
		}
	}
	if provenance != nil {
		it.Warnings = append(it.Warnings, provenance.Warnings...)
	}
	if len(errs) > 0 {
		// Publishing now would show OpenTofu a version without all of
		// its platforms; the next run picks up what was uploaded.
		return finish(errors.Join(errs...))
	}
	if len(entries) == 0 {
		return finish(fmt.Errorf("provider %s %s: %w", pp.Address, vp.Version, ErrNoPlatforms))
	}
	if vp.Existing != nil {
		for key, p := range vp.Existing.Platforms {
			if !containsPlatform(entries, key) {
				entries = append(entries, p)
			}
		}
	}
	index, err := manifest.ProviderIndex(entries)
	if err != nil {
		return finish(fmt.Errorf("provider %s %s: %w", pp.Address, vp.Version, err))
	}
	it.Digest = index.Descriptor.Digest.String()
	if err := e.target.PutManifest(ctx, pp.Repository, index, ""); err != nil {
		return finish(fmt.Errorf("provider %s %s: %w", pp.Address, vp.Version, err))
	}
	if provenance != nil {
		n, err := e.pushProvenance(ctx, pp.Repository, index.Descriptor, provenance)
		it.Uploaded += n
		if err != nil {
			return finish(fmt.Errorf("provider %s %s: provenance: %w", pp.Address, vp.Version, err))
		}
	}
	if err := e.target.PutManifest(ctx, pp.Repository, index, vp.Tag); err != nil {
		return finish(fmt.Errorf("provider %s %s: %w", pp.Address, vp.Version, err))
	}
	e.logger.Debug("published", "provider", pp.Address, "version", vp.Version, "tag", vp.Tag, "platforms", it.Platforms, "digest", it.Digest)
	return finish(nil)
}

func containsPlatform(entries []manifest.PlatformManifest, key string) bool {
	for _, e := range entries {
		if e.Key() == key {
			return true
		}
	}
	return false
}

// copyPlatform verifies one platform package and makes sure its blob and
// image manifest are in the target; it never writes a tag.
func (e *Executor) copyPlatform(ctx context.Context, prov *provenanceCache, pp *ProviderPlan, vp *ProviderVersionPlan, key string) platformCopy {
	c := platformCopy{platform: key}
	fail := func(err error) platformCopy {
		c.err = fmt.Errorf("provider %s %s %s: %w", pp.Address, vp.Version, key, err)
		return c
	}
	// The upstream client's errors already name provider, version and platform.
	failUpstream := func(err error) platformCopy {
		c.err = err
		return c
	}
	pl, err := config.ParsePlatform(key)
	if err != nil {
		return fail(err)
	}
	pkg, err := e.fetcher.ProviderDownload(ctx, pp.Source, vp.Version, pl)
	if errors.Is(err, upstream.ErrPlatformNotOffered) {
		c.skipped = true
		return c
	}
	if err != nil {
		return failUpstream(err)
	}
	c.provenance, err = prov.get(ctx, pkg)
	if err != nil {
		return failUpstream(err)
	}
	zip, err := manifest.BlobDescriptor(manifest.ZipLayerMediaType, pkg.SHA256, max(pkg.Size, 0))
	if err != nil {
		return fail(err)
	}
	have, exists, err := e.target.BlobExists(ctx, pp.Repository, zip)
	if err != nil {
		return fail(err)
	}
	if exists {
		// Content-addressed: a blob with the signed digest is the signed zip.
		zip = have
		e.logger.Debug("package already in target", "provider", pp.Address, "version", vp.Version, "platform", key)
	} else {
		n, uploaded, err := e.transfer(ctx, pp.Repository, pkg, &zip, Package{Address: pp.Address, Version: vp.Version, Name: key, Size: pkg.Size})
		c.downloaded, c.uploaded = n, uploaded
		if err != nil {
			return failUpstream(err)
		}
	}
	target, err := manifest.ProviderTarget(zip, pkg.Filename)
	if err != nil {
		return fail(err)
	}
	if err := e.target.PutManifest(ctx, pp.Repository, target, ""); err != nil {
		return fail(err)
	}
	c.uploaded += target.Descriptor.Size
	c.entry = manifest.PlatformManifest{OS: pl.OS, Arch: pl.Arch, Manifest: target.Descriptor}
	return c
}

// transfer downloads a package into a spool file, hashing as it streams
// (the fetcher refuses a mismatch), then uploads it from the file so a
// failed upload can be retried without downloading again.
func (e *Executor) transfer(ctx context.Context, repo string, pkg *upstream.ProviderPackage, zip *descriptor.Descriptor, ev Package) (downloaded, uploaded int64, err error) {
	name := fmt.Sprintf("provider %s %s %s", pkg.Provider, pkg.Version, pkg.Platform)
	e.progress(Event{Package: &ev})
	defer func() { end := ev; end.Done = true; e.progress(Event{Package: &end}) }()
	f, err := SpoolFile(e.spoolDir)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", name, err)
	}
	defer f.Close()
	w := &progressWriter{f: f, report: e.progress, pkg: &ev}
	sum, n, err := e.fetcher.DownloadPackage(ctx, pkg, w)
	if err != nil {
		return n, 0, err
	}
	if sum != zip.Digest.Encoded() {
		// The fetcher checks this too; an upload must never follow a mismatch.
		return n, 0, fmt.Errorf("%s: %w: got sha256 %s, signed SHA256SUMS says %s", name, upstream.ErrChecksumMismatch, sum, zip.Digest.Encoded())
	}
	zip.Size = n
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return n, 0, fmt.Errorf("%s: spool: %w", name, err)
	}
	if err := e.target.PutBlob(ctx, repo, *zip, &uploadReader{f: f, report: e.progress, pkg: &ev}); err != nil {
		return n, 0, fmt.Errorf("%s: %w", name, err)
	}
	return n, n, nil
}

// uploadReader reads a spooled package for its upload and reports the
// bytes sent; it seeks, so a retried upload can rewind.
type uploadReader struct {
	f      *os.File
	report func(Event)
	pkg    *Package
	pos    int64
}

func (r *uploadReader) Read(p []byte) (int, error) {
	n, err := r.f.Read(p)
	if n > 0 {
		r.pos += int64(n)
		r.report(Event{Uploaded: int64(n), Package: r.pkg})
	}
	return n, err
}

// Seek moves in the spool file; a move back is reported as negative bytes.
func (r *uploadReader) Seek(offset int64, whence int) (int64, error) {
	pos, err := r.f.Seek(offset, whence)
	if err == nil && pos != r.pos {
		r.report(Event{Uploaded: pos - r.pos, Package: r.pkg})
		r.pos = pos
	}
	return pos, err
}

// ensureBlob uploads a small blob unless the repository has it.
func (e *Executor) ensureBlob(ctx context.Context, repo string, d descriptor.Descriptor, data []byte) error {
	if _, exists, err := e.target.BlobExists(ctx, repo, d); err != nil || exists {
		return err
	}
	return e.target.PutBlob(ctx, repo, d, bytes.NewReader(data))
}

// pushProvenance keeps the signed SHA256SUMS, signature and key next to
// the index as a referrer, so the air-gapped side can check them again.
func (e *Executor) pushProvenance(ctx context.Context, repo string, subject descriptor.Descriptor, p *upstream.Provenance) (int64, error) {
	layer := func(mediaType, title string, data []byte) (descriptor.Descriptor, error) {
		if len(data) == 0 {
			return descriptor.Descriptor{}, nil
		}
		d, err := manifest.BlobDescriptor(mediaType, sha256Hex(data), int64(len(data)))
		if err != nil {
			return d, err
		}
		d.Annotations = map[string]string{manifest.TitleAnnotation: title}
		return d, e.ensureBlob(ctx, repo, d, data)
	}
	sums, err := layer(manifest.SHA256SUMSMediaType, "SHA256SUMS", p.SHA256SUMS)
	if err != nil {
		return 0, err
	}
	sig, err := layer(manifest.SignatureMediaType, "SHA256SUMS.sig", p.Signature)
	if err != nil {
		return 0, err
	}
	key, err := layer(manifest.PublicKeyMediaType, "signing-key.asc", []byte(p.SigningKey))
	if err != nil {
		return 0, err
	}
	a, err := manifest.Provenance(subject, sums, sig, key)
	if err != nil {
		return 0, err
	}
	if err := e.target.PutManifest(ctx, repo, a, ""); err != nil {
		return 0, err
	}
	// Small files, counted whether or not the registry already had them.
	return a.Descriptor.Size + sums.Size + sig.Size + key.Size, nil
}

// provenanceCache verifies a version's SHA256SUMS once for all its platforms.
type provenanceCache struct {
	fetcher ProviderFetcher
	mu      gosync.Mutex
	entries map[string]*provenanceEntry
}

type provenanceEntry struct {
	once gosync.Once
	p    *upstream.Provenance
	err  error
}

func (c *provenanceCache) get(ctx context.Context, pkg *upstream.ProviderPackage) (*upstream.Provenance, error) {
	// Each download answer names its own files and keys: share a
	// verification only between answers that agree on all of them.
	key := pkg.SHASumsURL + "\x00" + pkg.SHASumsSignatureURL
	for _, k := range pkg.SigningKeys {
		key += "\x00" + k.KeyID + "\x00" + k.ASCIIArmor
	}
	c.mu.Lock()
	if c.entries == nil {
		c.entries = map[string]*provenanceEntry{}
	}
	ent, ok := c.entries[key]
	if !ok {
		ent = &provenanceEntry{}
		c.entries[key] = ent
	}
	c.mu.Unlock()
	ent.once.Do(func() { ent.p, ent.err = c.fetcher.VerifyProvenance(ctx, pkg) })
	if ent.err != nil {
		return nil, ent.err
	}
	// The signed file is shared, but each platform's line must match its own shasum.
	if got := ent.p.Sums[pkg.Filename]; got != pkg.SHA256 {
		return nil, fmt.Errorf("provider %s %s %s: %w: signed SHA256SUMS line for %s is %q, registry says %s",
			pkg.Provider, pkg.Version, pkg.Platform, upstream.ErrChecksumMismatch, pkg.Filename, got, pkg.SHA256)
	}
	return ent.p, nil
}

// progressWriter forwards writes to the spool file and reports byte counts.
type progressWriter struct {
	f       *os.File
	report  func(Event)
	pkg     *Package
	written int64
}

func (w *progressWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if n > 0 {
		w.written += int64(n)
		w.report(Event{Bytes: int64(n), Package: w.pkg})
	}
	return n, err
}

// Seek and Truncate let the fetcher restart a failed download from scratch
// in the same spool file.
func (w *progressWriter) Seek(offset int64, whence int) (int64, error) {
	return w.f.Seek(offset, whence)
}

// Truncate discards what a failed download attempt wrote.
func (w *progressWriter) Truncate(size int64) error {
	if size < w.written {
		w.report(Event{Bytes: size - w.written, Package: w.pkg})
		w.written = size
	}
	return w.f.Truncate(size)
}
