package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/sched"

	"github.com/hashicorp/go-version"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/errs"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/copygraph"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/provenance"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/spool"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/target"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/upstream"
)

// ProviderPlan is the plan for one provider of the plan file.
type ProviderPlan struct {
	Source     config.ProviderAddr   `json:"-"`
	Address    string                `json:"address"`
	Repository string                `json:"repository"`
	Versions   []ProviderVersionPlan `json:"versions"`
	Warnings   []string              `json:"warnings,omitempty"`
	// Err is why this provider could not be planned (upstream or target
	// unreachable, unknown provider); its versions are then unknown. Its
	// message is the JSON "error".
	Err error `json:"-"`
}

// MarshalJSON writes the plan with Err's message as "error".
func (pp ProviderPlan) MarshalJSON() ([]byte, error) {
	type plain ProviderPlan
	return json.Marshal(struct {
		plain
		Error string `json:"error,omitempty"`
	}{plain(pp), item.ErrorText(pp.Err)})
}

// ProviderVersionPlan is the state of one upstream version in the target.
type ProviderVersionPlan struct {
	Version string     `json:"version"`
	Tag     string     `json:"tag"`
	State   item.State `json:"state"`
	// Platforms are the wanted platforms upstream offers for this version.
	Platforms []string `json:"platforms"`
	// Present are the platforms the target's index already has (any, wanted or not).
	Present []string `json:"present,omitempty"`
	// Add are the platforms to copy.
	Add []string `json:"add,omitempty"`
	// Unavailable are wanted platforms upstream does not offer (a warning).
	Unavailable []string `json:"unavailable,omitempty"`
	// Detail explains a conflict.
	Detail string `json:"detail,omitempty"`
	// Existing is the target's current index, kept so the executor can
	// build the union without reading it again.
	Existing       *manifest.ProviderIndexInfo `json:"-"`
	ExistingDigest string                      `json:"existing_digest,omitempty"`
}

// providers is the provider [kind]. Planning one provider costs one
// upstream versions call, the target's tag-list pages, and one manifest
// read per matching version already tagged. Copying a version costs, per
// platform to add, one download answer, the SHA256SUMS and its signature
// (once per version), a HEAD of the zip and, when missing, its download
// and upload, and the platform manifest; then the index, the provenance
// referrer and the tag.
type providers struct{}

func (providers) plan(e *Engine, cfg *config.Config, p *Plan) ([]func(context.Context), func()) {
	p.Providers = make([]ProviderPlan, len(cfg.Providers))
	tasks := make([]func(context.Context), len(cfg.Providers))
	for i, prov := range cfg.Providers {
		tasks[i] = func(ctx context.Context) { p.Providers[i] = planProvider(ctx, e, prov) }
	}
	return tasks, nil
}

func (providers) entries(p *Plan) []entry {
	out := make([]entry, 0, len(p.Providers))
	for i := range p.Providers {
		pp := &p.Providers[i]
		en := entry{kind: item.Provider, address: pp.Address, repository: pp.Repository, err: pp.Err}
		for j := range pp.Versions {
			vp := &pp.Versions[j]
			v := versionView{version: vp.Version, tag: vp.Tag, state: vp.State, digest: vp.ExistingDigest, detail: vp.Detail}
			if vp.State.Pending() {
				v.copy = func(ctx context.Context, r *run, it item.Result) item.Result {
					return r.providerVersion(ctx, pp, vp, it)
				}
			}
			en.versions = append(en.versions, v)
		}
		out = append(out, en)
	}
	return out
}

func planProvider(ctx context.Context, e *Engine, prov config.Provider) ProviderPlan {
	pp := ProviderPlan{Source: prov.Source, Address: prov.Source.String(), Repository: prov.Repository, Versions: []ProviderVersionPlan{}}
	fail := func(err error) ProviderPlan {
		pp.Err = named("provider "+pp.Address, err)
		return pp
	}
	up, err := e.up.ProviderVersions(ctx, prov.Source)
	if err != nil {
		return fail(err)
	}
	for _, w := range up.Warnings {
		pp.Warnings = append(pp.Warnings, "upstream: "+w)
	}
	wanted := make([]string, 0, len(prov.Platforms))
	for _, pl := range prov.Platforms {
		wanted = append(wanted, pl.String())
	}
	type candidate struct {
		v       *version.Version
		offered map[string]bool
		// probe: upstream listed no platforms, so (as OpenTofu) ask
		// download for each wanted one the target lacks.
		probe bool
	}
	var all []*version.Version
	offeredBy := map[*version.Version]map[string]bool{}
	unlisted := map[*version.Version]bool{} // upstream listed no platforms
	for _, uv := range up.Versions {
		v, ok := manifest.ParseStrictVersion(uv.Version)
		if !ok {
			pp.Warnings = append(pp.Warnings, fmt.Sprintf("upstream version %q is not a valid version: ignored", uv.Version))
			continue
		}
		offered := map[string]bool{}
		for _, pl := range uv.Platforms {
			offered[pl.String()] = true
		}
		all = append(all, v)
		offeredBy[v] = offered
		if !uv.PlatformsListed {
			unlisted[v] = true
		}
	}
	var cands []candidate
	for _, v := range prov.Selection().Select(all) {
		cands = append(cands, candidate{v: v, offered: offeredBy[v], probe: unlisted[v]})
	}
	if len(cands) == 0 {
		pp.Warnings = append(pp.Warnings, fmt.Sprintf("no upstream version matches %q", prov.Versions))
		return pp
	}
	tags, err := e.inventory.Tags(ctx, prov.Repository)
	if err != nil {
		return fail(err)
	}
	tagged := make(map[string]bool, len(tags))
	for _, t := range tags {
		tagged[t] = true
	}
	for _, c := range cands {
		ver := c.v.Original()
		vp := ProviderVersionPlan{Version: ver, Tag: manifest.Tag(ver), Platforms: []string{}}
		for _, w := range wanted {
			if c.offered[w] || c.probe {
				vp.Platforms = append(vp.Platforms, w)
			} else {
				vp.Unavailable = append(vp.Unavailable, w)
			}
		}
		if !tagged[vp.Tag] {
			vp.State = item.Missing
			vp.Add = vp.Platforms
		} else if err := compareProviderTag(ctx, e, prov.Repository, &vp); err != nil {
			return fail(err)
		}
		if c.probe && vp.State.Pending() {
			if err := probePlatforms(ctx, e, prov, &vp); err != nil {
				return fail(err)
			}
		}
		if len(vp.Unavailable) > 0 {
			pp.Warnings = append(pp.Warnings, fmt.Sprintf("%s: upstream does not offer %v", ver, vp.Unavailable))
		}
		if vp.State.Pending() && len(vp.Platforms) == 0 {
			// Nothing wanted is offered: no index can be built.
			vp.State = item.Complete
			if len(vp.Present) == 0 {
				vp.Detail = "no wanted platform offered upstream"
			}
		}
		pp.Versions = append(pp.Versions, vp)
	}
	return pp
}

// probePlatforms asks upstream's download endpoint, for a version whose
// versions answer listed no platforms, about each platform the plan would
// add, as OpenTofu does when it installs: one not offered
// ([upstream.ErrPlatformNotOffered]) moves from Platforms and Add to
// Unavailable, and a version left with nothing to add is complete. Any
// other error fails the provider's plan, as a failed versions call does.
func probePlatforms(ctx context.Context, e *Engine, prov config.Provider, vp *ProviderVersionPlan) error {
	notOffered := map[string]bool{}
	for _, key := range vp.Add {
		pl, err := config.ParsePlatform(key)
		if err != nil {
			return err
		}
		_, err = e.up.ProviderDownload(ctx, prov.Source, vp.Version, pl)
		switch {
		case errors.Is(err, upstream.ErrPlatformNotOffered):
			notOffered[key] = true
		case err != nil:
			return err
		}
	}
	if len(notOffered) == 0 {
		return nil
	}
	keep := func(list []string) []string {
		return slices.DeleteFunc(slices.Clone(list), func(k string) bool { return notOffered[k] })
	}
	vp.Platforms, vp.Add = keep(vp.Platforms), keep(vp.Add)
	for _, key := range slices.Sorted(maps.Keys(notOffered)) {
		vp.Unavailable = append(vp.Unavailable, key)
	}
	if len(vp.Add) == 0 && len(vp.Present) > 0 {
		vp.State = item.Complete // what upstream offers is all there
	}
	return nil
}

// compareProviderTag reads the index behind an existing tag and sets the
// version's state from the platforms it holds.
func compareProviderTag(ctx context.Context, e *Engine, repo string, vp *ProviderVersionPlan) error {
	raw, desc, err := e.inventory.Manifest(ctx, repo, vp.Tag)
	if errors.Is(err, errs.ErrNotFound) {
		// Listed but gone (deleted between the two calls): treat as missing.
		vp.State, vp.Add = item.Missing, vp.Platforms
		return nil
	}
	if err != nil {
		return err
	}
	cmp := CompareProviderIndex(raw, vp.Platforms)
	vp.State, vp.Detail, vp.Existing, vp.Present, vp.Add = cmp.State, cmp.Detail, cmp.Existing, cmp.Present, cmp.Add
	if cmp.Existing != nil {
		vp.ExistingDigest = desc.Digest.String()
	}
	return nil
}

// TagComparison is what a version tag in the target holds, measured
// against what is wanted there. The planner and bundle import share it, so
// they agree on what may be replaced.
type TagComparison struct {
	State item.State
	// Detail explains a conflict.
	Detail string
	// Existing is the provider index found (nil for a conflict).
	Existing *manifest.ProviderIndexInfo
	// Present are the index's platforms; Add the wanted ones it lacks.
	Present, Add []string
}

// CompareProviderIndex classifies the manifest raw found at a provider
// version tag against the wanted platforms: a conflict when it is not a
// provider index OpenTofu accepts, incomplete when wanted platforms are
// missing, complete otherwise.
func CompareProviderIndex(raw []byte, wanted []string) TagComparison {
	info, err := manifest.ParseProviderIndex(raw)
	if err != nil {
		return TagComparison{State: item.Conflict, Detail: err.Error()}
	}
	c := TagComparison{State: item.Complete, Existing: info, Present: info.PlatformKeys()}
	for _, pl := range wanted {
		if _, ok := info.Platforms[pl]; !ok {
			c.Add = append(c.Add, pl)
		}
	}
	slices.Sort(c.Add)
	if len(c.Add) > 0 {
		c.State = item.Incomplete
	}
	return c
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

// providerVersion copies a version's missing platforms (each in its own
// transfer slot), then publishes the index, its provenance and the tag.
func (r *run) providerVersion(ctx context.Context, pp *ProviderPlan, vp *ProviderVersionPlan, it item.Result) item.Result {
	name := fmt.Sprintf("provider %s %s", pp.Address, vp.Version)
	fail := func(err error) item.Result {
		it.Fail(err)
		it.Platforms = nil
		return it
	}
	if err := r.ensureEmptyConfig(ctx, pp.Repository); err != nil {
		return fail(fmt.Errorf("%s: %w", name, err))
	}
	verified := &provenanceCache{source: r.e.up}
	copies := make([]platformCopy, len(vp.Add))
	var wg sync.WaitGroup
	for i, key := range vp.Add {
		wg.Add(1)
		go func() {
			defer wg.Done()
			copies[i] = r.copyPlatform(ctx, verified, pp, vp, key)
		}()
	}
	wg.Wait()

	var entries []manifest.PlatformManifest
	var errs []error
	var prov *upstream.Provenance
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
			if prov == nil {
				prov = c.provenance
			}
		}
	}
	if prov != nil {
		it.Warnings = append(it.Warnings, prov.Warnings...)
	}
	if len(errs) > 0 {
		// Publishing now would show OpenTofu a version without all of
		// its platforms; the next run picks up what was uploaded.
		return fail(errors.Join(errs...))
	}
	if len(entries) == 0 {
		// Every platform to add turned out not offered (a 404 from
		// download): nothing to publish, and nothing OpenTofu could
		// install is missing. A warning, as in the plan, not a failure.
		it.Action, it.State = item.None, item.Unchanged
		it.Warnings = append(it.Warnings, fmt.Sprintf("%s: %v; nothing published", name, ErrNoPlatforms))
		if vp.ExistingDigest != "" {
			it.Digest = vp.ExistingDigest
		}
		return it
	}
	var kept []descriptor.Descriptor
	if vp.Existing != nil {
		for key, p := range vp.Existing.Platforms {
			if !slices.ContainsFunc(entries, func(e manifest.PlatformManifest) bool { return e.Key() == key }) {
				entries = append(entries, p)
			}
		}
		// Entries OpenTofu skips (another tool's attestations, an
		// os.version) stay: the tag is installable with them, and they
		// are not ours to drop.
		kept = vp.Existing.Ignored
	}
	index, err := manifest.ProviderIndexKeeping(entries, kept)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", name, err))
	}
	it.Digest = index.Descriptor.Digest.String()
	if err := r.copier.Manifest(ctx, pp.Repository, index); err != nil {
		return fail(fmt.Errorf("%s: %w", name, err))
	}
	if prov != nil {
		n, warnings, err := r.pushProvenance(ctx, pp.Repository, index.Descriptor, prov)
		it.Uploaded += n
		it.Warnings = append(it.Warnings, warnings...)
		if err != nil {
			return fail(fmt.Errorf("%s: provenance: %w", name, err))
		}
	}
	if err := r.copier.Tag(ctx, pp.Repository, index, vp.Tag); err != nil {
		return fail(fmt.Errorf("%s: %w", name, err))
	}
	r.e.logger.Debug("published", "provider", pp.Address, "version", vp.Version, "tag", vp.Tag, "platforms", it.Platforms, "digest", it.Digest)
	return it
}

// copyPlatform verifies one platform package and makes sure its blob and
// image manifest are in the target; it never writes a tag. Its metadata
// calls (the download answer, the SHA256SUMS, whether the target has the
// zip) hold a metadata slot, the download and upload a transfer slot.
func (r *run) copyPlatform(ctx context.Context, verified *provenanceCache, pp *ProviderPlan, vp *ProviderVersionPlan, key string) platformCopy {
	c := platformCopy{platform: key}
	name := fmt.Sprintf("provider %s %s %s", pp.Address, vp.Version, key)
	release, err := r.metaSlot(ctx, name)
	if err != nil {
		c.err = err
		return c
	}
	defer func() { release() }()
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
	pkg, err := r.e.up.ProviderDownload(ctx, pp.Source, vp.Version, pl)
	if errors.Is(err, upstream.ErrPlatformNotOffered) {
		c.skipped = true
		return c
	}
	if err != nil {
		return failUpstream(err)
	}
	c.provenance, err = verified.get(ctx, pkg)
	if err != nil {
		return failUpstream(err)
	}
	zip, err := manifest.BlobDescriptor(manifest.ZipLayerMediaType, pkg.SHA256, max(pkg.Size, 0))
	if err != nil {
		return fail(err)
	}
	have, exists, err := r.target.BlobExists(ctx, pp.Repository, zip)
	if err != nil {
		return fail(err)
	}
	if exists {
		// Content-addressed: a blob with the signed digest is the signed zip.
		zip = have
		r.e.logger.Debug("package already in target", "provider", pp.Address, "version", vp.Version, "platform", key)
	} else {
		release()
		release = func() {}
		next, err := r.slot(ctx, name)
		if err != nil {
			c.err = err
			return c
		}
		release = next
		n, uploaded, err := r.transfer(ctx, pp.Repository, pkg, &zip, item.Package{Address: pp.Address, Version: vp.Version, Name: key, Size: pkg.Size})
		c.downloaded, c.uploaded = n, uploaded
		if err != nil {
			return failUpstream(err)
		}
	}
	platformManifest, err := manifest.ProviderTarget(zip, pkg.Filename)
	if err != nil {
		return fail(err)
	}
	if err := r.copier.Manifest(ctx, pp.Repository, platformManifest); err != nil {
		return fail(err)
	}
	c.uploaded += platformManifest.Descriptor.Size
	c.entry = manifest.PlatformManifest{OS: pl.OS, Arch: pl.Arch, Manifest: platformManifest.Descriptor}
	return c
}

// transfer downloads a package into a spool file, hashing as it streams
// (the fetcher refuses a mismatch), and uploads it while it comes down:
// the upload reads the spool file behind the download ([spool.Tee]), and
// the package's last byte reaches the registry only once its digest is
// confirmed, so a mismatch leaves no blob. A failed upload retries from
// the spool file without downloading again, and so does an upload the
// download's own retry voided. It reports ev as a package to the
// progress function: its start, its downloaded and uploaded bytes, and
// its end.
func (r *run) transfer(ctx context.Context, repo string, pkg *upstream.ProviderPackage, zip *descriptor.Descriptor, ev item.Package) (downloaded, uploaded int64, err error) {
	name := fmt.Sprintf("provider %s %s %s", pkg.Provider, pkg.Version, pkg.Platform)
	r.e.progress(item.Event{Package: &ev})
	defer func() { end := ev; end.Done = true; r.e.progress(item.Event{Package: &end}) }()
	f, err := spool.File(r.e.spoolDir)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", name, err)
	}
	defer f.Close()
	tee := spool.NewTee(f, pkg.Size)
	// One source for every attempt, so a second opening takes back what
	// the first reported: the tee while streaming, then the spool file.
	var complete int64 // the package's size once the spool file holds it all; set before the retry
	uploads := reportUploads(func() (io.Reader, error) {
		if complete > 0 {
			return io.NewSectionReader(f, 0, complete), nil
		}
		size, err := tee.Size(ctx)
		if err != nil {
			return nil, err
		}
		return io.NewSectionReader(tee, 0, size), nil
	}, r.e.progress, &ev)
	streamed := make(chan error, 1)
	upCtx, cancelUpload := context.WithCancel(ctx)
	defer cancelUpload()
	go func() {
		size, err := tee.Size(upCtx)
		if err != nil {
			streamed <- err
			return
		}
		d := *zip
		d.Size = size
		_, err = r.copier.Blob(upCtx, repo, d, uploads, true)
		streamed <- err
	}()

	w := &progressWriter{f: tee, report: r.e.progress, pkg: &ev}
	sum, n, err := r.e.up.DownloadPackage(ctx, pkg, w)
	if err == nil && sum != zip.Digest.Encoded() {
		// The fetcher checks this too; an upload must never complete after a mismatch.
		err = fmt.Errorf("%s: %w: got sha256 %s, signed SHA256SUMS says %s", name, upstream.ErrChecksumMismatch, sum, zip.Digest.Encoded())
	}
	tee.Finish(err)
	if err != nil {
		cancelUpload()
		<-streamed
		return n, 0, err
	}
	zip.Size = n
	upErr := <-streamed
	if upErr == nil {
		return n, n, nil
	}
	if ctx.Err() != nil || r.target.Check() != nil || !uploadAgain(upErr, tee) {
		return n, 0, fmt.Errorf("%s: %w", name, upErr)
	}
	// The streamed upload failed for a reason that may pass (or the
	// download's retry voided it): once more from the complete spool file.
	r.e.logger.Info("upload failed while downloading: uploading again from the spool file", "provider", pkg.Provider, "version", pkg.Version, "platform", pkg.Platform, "reason", upErr.Error())
	complete = n
	if _, err := r.copier.Blob(ctx, repo, *zip, uploads, true); err != nil {
		return n, 0, fmt.Errorf("%s: %w", name, err)
	}
	return n, n, nil
}

// uploadAgain says whether an upload that failed while streaming is worth
// one more attempt from the complete spool file: when the download's
// retry voided it, or the registry failed rather than refused (no status,
// 5xx, 429); a refusal would be refused again.
func uploadAgain(err error, tee *spool.Tee) bool {
	if tee.Restarted() {
		return true
	}
	st := target.RefusalOf(err).Status
	return st == 0 || st >= 500 || st == 429
}

// pushProvenance keeps the signed SHA256SUMS, signature and key next to
// the index, as a referrer or under a tag as the target's provenance store
// decides (target.provenance), so the air-gapped side can check them
// again. Warnings say where provenance went when the registry refused a
// form; only a refusal in strict referrers mode, or an outage, is an
// error.
func (r *run) pushProvenance(ctx context.Context, repo string, subject descriptor.Descriptor, p *upstream.Provenance) (int64, []string, error) {
	if r.prov.Form() == target.FormNone && r.prov.Mode() == config.ProvenanceOff {
		return 0, nil, nil
	}
	a, layers, err := provenance.Artifact(subject, p)
	if err != nil {
		return 0, nil, err
	}
	n := a.Descriptor.Size
	for _, l := range layers {
		if _, err := r.copier.Blob(ctx, repo, l.Descriptor, copygraph.Bytes(l.Data), false); err != nil {
			return 0, nil, err
		}
		// Small files, counted whether or not the registry already had them.
		n += l.Descriptor.Size
	}
	_, warnings, err := r.copier.Provenance(ctx, repo, r.prov, subject, a)
	return n, warnings, err
}

// provenanceCache verifies a version's SHA256SUMS once for all its platforms.
type provenanceCache struct {
	source ProviderSource
	memo   sched.Memo[string, *upstream.Provenance]
}

func (c *provenanceCache) get(ctx context.Context, pkg *upstream.ProviderPackage) (*upstream.Provenance, error) {
	// Each download answer names its own files and keys: share a
	// verification only between answers that agree on all of them.
	key := pkg.SHASumsURL + "\x00" + pkg.SHASumsSignatureURL
	for _, k := range pkg.SigningKeys {
		key += "\x00" + k.KeyID + "\x00" + k.ASCIIArmor
	}
	p, err := c.memo.Get(ctx, key, func() (*upstream.Provenance, error) { return c.source.VerifyProvenance(ctx, pkg) })
	if err != nil {
		return nil, err
	}
	// The signed file is shared, but each platform's line must match its own shasum.
	if got := p.Sums[pkg.Filename]; got != pkg.SHA256 {
		return nil, fmt.Errorf("provider %s %s %s: %w: signed SHA256SUMS line for %s is %q, registry says %s",
			pkg.Provider, pkg.Version, pkg.Platform, upstream.ErrChecksumMismatch, pkg.Filename, got, pkg.SHA256)
	}
	return p, nil
}

// progressWriter forwards writes to the spool file and reports byte counts.
type progressWriter struct {
	f       *spool.Tee
	report  func(item.Event)
	pkg     *item.Package
	written int64
}

func (w *progressWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if n > 0 {
		w.written += int64(n)
		w.report(item.Event{Bytes: int64(n), Package: w.pkg})
	}
	return n, err
}

// Seek and Truncate let the fetcher restart a failed download from scratch
// in the same spool file.
func (w *progressWriter) Seek(offset int64, whence int) (int64, error) {
	return w.f.Seek(offset, whence)
}

// Truncate discards what a failed download attempt wrote, and reports
// the discarded bytes as negative.
func (w *progressWriter) Truncate(size int64) error {
	if size < w.written {
		w.report(item.Event{Bytes: size - w.written, Package: w.pkg})
		w.written = size
	}
	return w.f.Truncate(size)
}

// ExpectSize passes the answer's Content-Length on to the spool, so the
// upload can start before the registry's size is known.
func (w *progressWriter) ExpectSize(n int64) { w.f.ExpectSize(n) }

// reportUploads wraps src so the bytes the upload reads are reported as
// pkg's Uploaded bytes. The readers stay io.ReadSeekers, so the registry
// client can rewind a failed attempt (reported as negative bytes); a
// second opening of src takes back what the first reported.
func reportUploads(src copygraph.Source, report func(item.Event), pkg *item.Package) copygraph.Source {
	var sent int64 // reported so far, over every opening
	var mu sync.Mutex
	back := func(n int64) {
		mu.Lock()
		sent += n
		mu.Unlock()
		report(item.Event{Uploaded: n, Package: pkg})
	}
	return func() (io.Reader, error) {
		rd, err := src()
		if err != nil {
			return nil, err
		}
		rs, ok := rd.(io.ReadSeeker)
		if !ok {
			return rd, nil
		}
		mu.Lock()
		prev := sent
		mu.Unlock()
		if prev != 0 {
			back(-prev)
		}
		return &uploadReader{r: rs, report: back}, nil
	}
}

// uploadReader reads a package for its upload and reports the bytes
// read; a seek reports the move (negative when it rewinds).
type uploadReader struct {
	r      io.ReadSeeker
	report func(int64)
	pos    int64

	mu       sync.Mutex
	furthest int64 // end of the furthest ReadAt
}

func (u *uploadReader) Read(p []byte) (int, error) {
	n, err := u.r.Read(p)
	if n > 0 {
		u.pos += int64(n)
		u.report(int64(n))
	}
	return n, err
}

// ReadAt reads the package at off for a target that restarts a failed
// upload from a fresh reader (target.Target.PutBlob, after a 413 or a
// 5xx): bytes past the furthest read so far are reported, and a read from
// offset 0 after others starts a new attempt, taking back what the last
// one reported. It fails when the package is not an io.ReaderAt.
func (u *uploadReader) ReadAt(p []byte, off int64) (int, error) {
	ra, ok := u.r.(io.ReaderAt)
	if !ok {
		return 0, errors.New("upload reader: package is not an io.ReaderAt")
	}
	n, err := ra.ReadAt(p, off)
	u.mu.Lock()
	var back, more int64
	if off == 0 && u.furthest > 0 {
		// A new attempt from the start: take back what the last one sent.
		back, u.furthest = u.furthest, 0
	}
	if end := off + int64(n); end > u.furthest {
		more, u.furthest = end-u.furthest, end
	}
	u.mu.Unlock()
	if back > 0 {
		u.report(-back)
	}
	if more > 0 {
		u.report(more)
	}
	return n, err
}

// Seek moves in the package; the move is reported.
func (u *uploadReader) Seek(offset int64, whence int) (int64, error) {
	pos, err := u.r.Seek(offset, whence)
	if err == nil && pos != u.pos {
		u.report(pos - u.pos)
		u.pos = pos
	}
	return pos, err
}
