// Package verify checks, reading only the target, that everything a plan
// names is there as OpenTofu needs it: tags resolve to artifacts meeting
// OpenTofu's contract, every wanted platform is in a provider's index,
// every manifest and blob is present with its size (deep: its digest), and
// a provider's stored provenance still verifies and covers its packages.
package verify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/go-version"
	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/errs"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/provenance"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/sched"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/target"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/upstream"
)

// Target is what [Run] reads of the target; [target.Target] is one.
type Target interface {
	target.TagReader
	target.ManifestFetcher
	target.BlobChecker
	target.BlobFetcher
	target.ReferrerLister
}

// ProblemCode classifies a [Problem] for scripts and monitoring.
type ProblemCode string

// Problem codes. A problem means OpenTofu may fail to install (or the
// mirror can no longer prove what it holds); a warning does not.
const (
	// ProblemNothingMirrored: the target holds no version the plan entry's
	// constraints allow.
	ProblemNothingMirrored ProblemCode = "nothing-mirrored"
	// ProblemUnreadable: the target failed to answer (not a "not found").
	ProblemUnreadable ProblemCode = "unreadable"
	// ProblemContract: a tag or manifest breaks OpenTofu's OCI contract;
	// OpenTofu would refuse it.
	ProblemContract ProblemCode = "contract"
	// ProblemMissingPlatform: a wanted platform is not in the version's index.
	ProblemMissingPlatform ProblemCode = "missing-platform"
	// ProblemMissingManifest: a tag or index entry points at a manifest the
	// repository lacks.
	ProblemMissingManifest ProblemCode = "missing-manifest"
	// ProblemMissingBlob: a manifest's config or layer blob is gone.
	ProblemMissingBlob ProblemCode = "missing-blob"
	// ProblemBlobMismatch: a blob's size (or, with deep verification, its
	// content's digest) differs from what its manifest says.
	ProblemBlobMismatch ProblemCode = "blob-mismatch"
	// ProblemProvenance: a stored provenance no longer verifies, or does not
	// list a package of the index under its file name.
	ProblemProvenance ProblemCode = "provenance"

	// WarningNoProvenance: no provenance artifact refers to the index
	// (pushed by another tool, or by an older version of this one).
	WarningNoProvenance ProblemCode = "no-provenance"
	// WarningProvenance: the provenance verified with a caveat (expired
	// key, unsigned by OpenTofu's registry.opentofu.org exception).
	WarningProvenance ProblemCode = "provenance-caveat"
	// WarningNotReleased: a wanted platform is missing but the signed
	// SHA256SUMS shows upstream never released it.
	WarningNotReleased ProblemCode = "not-released"
)

// Problem is one finding, naming what it is about. Version and
// Platform are empty when the finding concerns the whole entry or version.
type Problem struct {
	Kind       item.Kind   `json:"kind"`
	Address    string      `json:"address"`
	Version    string      `json:"version,omitempty"`
	Platform   string      `json:"platform,omitempty"`
	Repository string      `json:"repository"`
	Code       ProblemCode `json:"code"`
	Message    string      `json:"message"`

	order int // plan entry, then version, for sorting
}

// String renders the finding on one line.
func (p Problem) String() string {
	parts := []string{string(p.Kind), p.Address}
	for _, s := range []string{p.Version, p.Platform} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, " ") + ": " + p.Message
}

// Report is what [Verify] found. Problems and Warnings are in plan
// order (entries as in the plan file, versions ascending, then platform)
// and never nil.
type Report struct {
	Deep bool `json:"deep"`
	// KeysPinned says whether stored provenance was checked against keys
	// pinned in trust.provider_keys; false means against the key stored
	// next to each index, which proves integrity since the mirror fetched
	// it, not who signed it.
	KeysPinned bool `json:"keys_pinned"`
	// Checked counts the versions (provider and module) examined.
	Checked  int       `json:"checked"`
	Problems []Problem `json:"problems"`
	Warnings []Problem `json:"warnings"`
}

// Option configures [Verify].
type Option func(*verifier)

// WithDeep also downloads every config and layer blob and hashes it
// (streamed, never held in memory): it finds content that rotted in the
// registry's storage, at the price of reading all of it.
func WithDeep(deep bool) Option { return func(v *verifier) { v.deep = deep } }

// WithConcurrency bounds how many versions are checked at once (default 4).
func WithConcurrency(n int) Option {
	return func(v *verifier) {
		if n > 0 {
			v.concurrency = n
		}
	}
}

// WithLogger sets the logger (debug: each version checked).
func WithLogger(l *slog.Logger) Option { return func(v *verifier) { v.logger = l } }

// WithPolicy sets what stored provenance must satisfy. Default: the key
// stored next to each index verifies it, and OpenTofu's exception for
// registry.opentofu.org applies; with keys pinned, only they do.
func WithPolicy(p provenance.Policy) Option { return func(v *verifier) { v.policy = p } }

// Run checks that everything cfg names is in the target as OpenTofu
// needs it, reading only the target. For each provider and module entry it
// lists the repository's tags and checks every version tag the entry's
// constraints allow ("_" read as "+"): the tag resolves to an artifact
// meeting OpenTofu's contract, every wanted platform is in a provider's
// index, every manifest and blob it references is there with the size the
// manifest says (WithVerifyDeep: and the digest), and a provider's stored
// provenance still verifies and lists every package under its file name.
// Findings go in the report; the error is only for a cancelled context.
//
// Requests (registry): per entry, one tag-list request per page. Per
// provider version: one GET of the index, then per platform one GET of its
// manifest and one HEAD of its layer; a config blob is HEADed once per
// repository. Provenance ([target.FindProvenance]): one referrers lookup
// (on registries without the referrers API the first lookup in a
// repository also asks the API and gets a 404, then reads the
// sha256-<hex> fallback tag) and, when it finds none, one GET of the
// tofu-provenance-<hex> tag; then one GET of the provenance manifest and
// one GET per layer (three small files). With target.provenance: off a
// version without provenance is no warning. Per
// module version: one GET of the manifest and one HEAD of its layer. Deep
// replaces each HEAD by a GET of the whole blob.
func Run(ctx context.Context, cfg *config.Config, t Target, opts ...Option) (*Report, error) {
	v := &verifier{target: t, concurrency: 4, logger: slog.New(slog.DiscardHandler),
		policy:        provenance.Policy{CarriedKeysTrusted: true, OpenTofuException: true},
		provenanceOff: cfg.Target.Provenance == config.ProvenanceOff}
	for _, o := range opts {
		o(v)
	}
	v.report = &Report{Deep: v.deep, KeysPinned: v.policy.Pinned(), Problems: []Problem{}, Warnings: []Problem{}}

	var entries []*verifyEntry
	for _, p := range cfg.Providers {
		wanted := make([]string, 0, len(p.Platforms))
		for _, pl := range p.Platforms {
			wanted = append(wanted, pl.String())
		}
		entries = append(entries, &verifyEntry{kind: item.Provider, address: p.Source.String(), repo: p.Repository,
			versions: p.Versions, selection: p.Selection(), platforms: wanted})
	}
	for _, m := range cfg.Modules {
		entries = append(entries, &verifyEntry{kind: item.Module, address: m.Source.String(), repo: m.Repository,
			versions: m.Versions, selection: m.Selection(), module: true})
	}
	for i, e := range entries {
		e.order = (i + 1) << 24
	}

	// Tags first, then versions, each bounded by the same concurrency.
	v.each(len(entries), func(i int) { v.listVersions(ctx, entries[i]) })
	var jobs []verifyJob
	for _, e := range entries {
		for _, tag := range e.tags {
			jobs = append(jobs, verifyJob{entry: e, tag: tag})
		}
	}
	v.each(len(jobs), func(i int) {
		if ctx.Err() != nil {
			return
		}
		v.checkVersion(ctx, jobs[i].entry, jobs[i].tag)
		v.mu.Lock()
		v.report.Checked++
		v.mu.Unlock()
	})
	if err := ctx.Err(); err != nil {
		return v.report, fmt.Errorf("%w: verify: %w", item.ErrInterrupted, err)
	}
	sortFindings(v.report.Problems)
	sortFindings(v.report.Warnings)
	return v.report, nil
}

type verifier struct {
	target Target
	policy provenance.Policy
	// provenanceOff: the plan keeps no provenance, so none is no warning.
	provenanceOff bool
	deep          bool
	concurrency   int
	logger        *slog.Logger

	mu     sync.Mutex
	report *Report
	blobs  sched.Memo[blobKey, blobCheck]
}

type verifyEntry struct {
	kind          item.Kind
	address, repo string
	versions      string // the constraint as written
	selection     config.Selection
	order         int
	platforms     []string // wanted, for providers
	module        bool
	tags          []versionTag // filled by listVersions
}

type versionTag struct {
	tag, version string
	order        int
}

type verifyJob struct {
	entry *verifyEntry
	tag   versionTag
}

// each runs f(0..n-1) with at most v.concurrency at once.
func (v *verifier) each(n int, f func(int)) { sched.Each(n, v.concurrency, f) }

// finding is the identity a problem or warning is about.
type finding struct {
	e                 *verifyEntry
	version, platform string
	order             int
}

func (f finding) at(platform string) finding { f.platform = platform; return f }

func (f finding) make(code ProblemCode, format string, args ...any) Problem {
	return Problem{Kind: f.e.kind, Address: f.e.address, Version: f.version, Platform: f.platform,
		Repository: f.e.repo, Code: code, Message: fmt.Sprintf(format, args...), order: f.order}
}

func (v *verifier) problem(f finding, code ProblemCode, format string, args ...any) {
	p := f.make(code, format, args...)
	v.mu.Lock()
	v.report.Problems = append(v.report.Problems, p)
	v.mu.Unlock()
}

func (v *verifier) warn(f finding, code ProblemCode, format string, args ...any) {
	p := f.make(code, format, args...)
	v.mu.Lock()
	v.report.Warnings = append(v.report.Warnings, p)
	v.mu.Unlock()
}

// listVersions finds the entry's version tags the constraints allow.
func (v *verifier) listVersions(ctx context.Context, e *verifyEntry) {
	f := finding{e: e, order: e.order}
	tags, err := v.target.Tags(ctx, e.repo)
	if err != nil {
		if ctx.Err() == nil {
			v.problem(f, ProblemUnreadable, "listing tags of %s: %v", e.repo, err)
		}
		return
	}
	var found []versionTag
	vers := map[string]*version.Version{}
	for _, tag := range tags {
		s := manifest.VersionFromTag(tag)
		if e.module {
			// Module registries tolerate a "v" prefix, so may the tags.
			s = strings.TrimPrefix(s, "v")
		}
		ver, ok := manifest.ParseStrictVersion(s)
		if !ok || !e.selection.Constraints.Allows(s) {
			continue // "latest", sha256-<hex> referrer tags, other versions
		}
		found = append(found, versionTag{tag: tag, version: s})
		vers[tag] = ver
	}
	// Of the tagged versions, only those the plan selects (the newest N
	// when it retains that many) are the plan's; older ones are prune's.
	all := make([]*version.Version, 0, len(found))
	for _, vt := range found {
		all = append(all, vers[vt.tag])
	}
	if kept := e.selection.Select(all); len(kept) > 0 {
		oldest := kept[0]
		found = slices.DeleteFunc(found, func(vt versionTag) bool { return vers[vt.tag].LessThan(oldest) })
	}
	if len(found) == 0 {
		v.problem(f, ProblemNothingMirrored, "nothing mirrored for %s in %s: no tag matches %q; run sync", e.address, e.repo, e.versions)
		return
	}
	sort.Slice(found, func(i, j int) bool { return vers[found[i].tag].LessThan(vers[found[j].tag]) })
	for i := range found {
		found[i].order = e.order + i + 1
	}
	e.tags = found
}

// platformCheck is what checkProvider learnt of one platform of an index.
type platformCheck struct {
	key   string
	layer descriptor.Descriptor
	ok    bool // the platform manifest was read and meets the contract
}

// checkVersion reads the manifest a version tag points at and checks it as
// the entry's kind requires.
func (v *verifier) checkVersion(ctx context.Context, e *verifyEntry, vt versionTag) {
	f := finding{e: e, version: vt.version, order: vt.order}
	v.logger.Debug("verifying", string(e.kind), e.address, "version", vt.version, "repository", e.repo, "tag", vt.tag)
	raw, desc, err := v.target.Manifest(ctx, e.repo, vt.tag)
	switch {
	case errors.Is(err, errs.ErrNotFound):
		v.problem(f, ProblemMissingManifest, "tag %s is listed but does not resolve", vt.tag)
	case err != nil:
		if ctx.Err() == nil {
			v.problem(f, ProblemUnreadable, "reading tag %s: %v", vt.tag, err)
		}
	case e.module:
		v.checkModule(ctx, f, vt.tag, raw)
	default:
		v.checkProvider(ctx, f, vt.tag, raw, desc.Digest)
	}
}

func (v *verifier) checkProvider(ctx context.Context, f finding, tag string, raw []byte, index digest.Digest) {
	info, err := manifest.ParseProviderIndex(raw)
	if err != nil {
		v.problem(f, ProblemContract, "tag %s: %v; OpenTofu refuses it", tag, err)
		return
	}
	keys := info.PlatformKeys()
	checks := make([]platformCheck, len(keys))
	for i, key := range keys {
		checks[i] = v.checkPlatform(ctx, f.at(key), info.Platforms[key])
	}
	sums := v.checkProvenance(ctx, f, index, checks)
	for _, want := range f.e.platforms {
		if _, ok := info.Platforms[want]; ok {
			continue
		}
		if sums != nil && !provenance.ReleasesPlatform(sums, want) {
			v.warn(f.at(want), WarningNotReleased, "not in the index, and the signed SHA256SUMS lists no package for it: upstream did not release it")
			continue
		}
		v.problem(f.at(want), ProblemMissingPlatform, "wanted platform missing from the index at tag %s (has %s); run sync", tag, joinOrNone(keys))
	}
}

// checkPlatform checks one platform manifest of a provider index and the
// blobs it references.
func (v *verifier) checkPlatform(ctx context.Context, f finding, p manifest.PlatformManifest) platformCheck {
	pc := platformCheck{key: f.platform}
	raw, _, err := v.target.ManifestByDigest(ctx, f.e.repo, p.Manifest.Digest)
	switch {
	case errors.Is(err, errs.ErrNotFound):
		v.problem(f, ProblemMissingManifest, "platform manifest %s is missing from %s", p.Manifest.Digest, f.e.repo)
		return pc
	case err != nil:
		if ctx.Err() == nil {
			v.problem(f, ProblemUnreadable, "reading platform manifest %s: %v", p.Manifest.Digest, err)
		}
		return pc
	}
	if int64(len(raw)) != p.Manifest.Size {
		v.problem(f, ProblemContract, "platform manifest %s is %d bytes, the index says %d", p.Manifest.Digest, len(raw), p.Manifest.Size)
		return pc
	}
	layer, err := manifest.ProviderTargetLayer(raw)
	if err != nil {
		v.problem(f, ProblemContract, "platform manifest %s: %v", p.Manifest.Digest, err)
		return pc
	}
	pc.layer, pc.ok = layer, true
	v.checkConfig(ctx, f, raw)
	v.checkBlob(ctx, f, "layer", layer)
	return pc
}

// checkConfig checks the config blob of an image manifest already parsed
// once; the empty config most of them share is checked once per repository.
func (v *verifier) checkConfig(ctx context.Context, f finding, raw []byte) {
	m, err := manifest.Parse(raw)
	if err != nil || m.Config == nil || m.Config.Digest.Validate() != nil {
		v.problem(f, ProblemContract, "manifest has no valid config descriptor")
		return
	}
	v.checkBlob(ctx, f, "config", *m.Config)
}

// blobKey identifies a blob check; a blob is checked once per repository
// however many manifests reference it.
type blobKey struct {
	repo   string
	digest digest.Digest
	size   int64
}

// blobCheck is what checking a blob found; code is "" when it is fine.
type blobCheck struct {
	code ProblemCode
	msg  string
}

func (v *verifier) checkBlob(ctx context.Context, f finding, role string, d descriptor.Descriptor) {
	key := blobKey{repo: f.e.repo, digest: d.Digest, size: d.Size}
	bc, _ := v.blobs.Get(ctx, key, func() (blobCheck, error) {
		var bc blobCheck
		if v.deep {
			bc.code, bc.msg = v.hashBlob(ctx, f.e.repo, d)
		} else {
			bc.code, bc.msg = v.headBlob(ctx, f.e.repo, d)
		}
		return bc, nil
	})
	if bc.code != "" && ctx.Err() == nil {
		v.problem(f, bc.code, "%s blob %s: %s", role, d.Digest, bc.msg)
	}
}

func (v *verifier) headBlob(ctx context.Context, repo string, d descriptor.Descriptor) (ProblemCode, string) {
	got, ok, err := v.target.BlobExists(ctx, repo, d)
	switch {
	case err != nil:
		return ProblemUnreadable, err.Error()
	case !ok:
		return ProblemMissingBlob, "missing from " + repo
	case got.Size != d.Size:
		return ProblemBlobMismatch, fmt.Sprintf("the registry holds %d bytes, the manifest says %d", got.Size, d.Size)
	}
	return "", ""
}

// hashBlob downloads a blob and compares its sha256 and size with d,
// streaming it through the hash.
func (v *verifier) hashBlob(ctx context.Context, repo string, d descriptor.Descriptor) (ProblemCode, string) {
	if d.Digest.Algorithm() != digest.SHA256 {
		return ProblemContract, fmt.Sprintf("digest algorithm %s: only sha256 is verified", d.Digest.Algorithm())
	}
	rdr, err := v.target.Blob(ctx, repo, d)
	if errors.Is(err, errs.ErrNotFound) {
		return ProblemMissingBlob, "missing from " + repo
	}
	if err != nil {
		return ProblemUnreadable, err.Error()
	}
	defer rdr.Close()
	h := sha256.New()
	n, err := io.Copy(h, rdr)
	got := "sha256:" + hex.EncodeToString(h.Sum(nil))
	mismatch := errors.Is(err, errs.ErrDigestMismatch) || errors.Is(err, errs.ErrShortRead) || errors.Is(err, errs.ErrSizeLimitExceeded)
	if err != nil && !mismatch {
		return ProblemUnreadable, fmt.Sprintf("downloading: %v", err)
	}
	if mismatch || got != d.Digest.String() || n != d.Size {
		// A reader that stops at the expected size may hide extra bytes:
		// the digest still tells.
		return ProblemBlobMismatch, fmt.Sprintf("content is %d bytes hashing to %s, the manifest says %d bytes %s", n, got, d.Size, d.Digest)
	}
	return "", ""
}

func (v *verifier) checkModule(ctx context.Context, f finding, tag string, raw []byte) {
	layer, err := manifest.ModulePackageLayer(raw)
	if err != nil {
		v.problem(f, ProblemContract, "tag %s: %v; OpenTofu refuses it", tag, err)
		return
	}
	v.checkConfig(ctx, f, raw)
	v.checkBlob(ctx, f, "layer", layer)
}

// checkProvenance re-verifies every provenance artifact referring to the
// index and that each platform's layer is the signed SHA256SUMS line for
// its file name. It returns the parsed sums of a provenance that verified,
// or nil.
func (v *verifier) checkProvenance(ctx context.Context, f finding, index digest.Digest, platforms []platformCheck) map[string]string {
	refs, err := target.FindProvenance(ctx, v.target, f.e.repo, index)
	if err != nil {
		if ctx.Err() == nil {
			v.problem(f, ProblemUnreadable, "looking for the provenance of index %s: %v", index, err)
		}
		return nil
	}
	if len(refs) == 0 {
		if v.provenanceOff {
			return nil // target.provenance: off keeps none
		}
		v.warn(f, WarningNoProvenance, "no provenance (signed SHA256SUMS) refers to index %s: packages cannot be checked against upstream's signature (tag pushed by another tool?)", index)
		return nil
	}
	layers := map[string]descriptor.Descriptor{}
	for _, pc := range platforms {
		if pc.ok {
			layers[pc.key] = pc.layer
		}
	}
	var verified map[string]string
	for _, ref := range refs {
		prov, unsigned, err := v.readProvenance(ctx, f, index, ref.Digest, layers)
		if err != nil {
			if ctx.Err() == nil {
				v.problem(f, ProblemProvenance, "provenance %s: %v", ref.Digest, err)
			}
			continue
		}
		for _, w := range prov.Warnings {
			v.warn(f, WarningProvenance, "provenance %s: %s", ref.Digest, w)
		}
		for _, pc := range platforms {
			if err := unsigned[pc.key]; err != nil {
				v.problem(f.at(pc.key), ProblemProvenance, "layer %s: %v (provenance %s)", pc.layer.Digest, err, ref.Digest)
			}
		}
		if len(unsigned) == 0 && verified == nil {
			verified = prov.Sums
		}
	}
	return verified
}

func (v *verifier) readProvenance(ctx context.Context, f finding, index, d digest.Digest, layers map[string]descriptor.Descriptor) (*upstream.Provenance, map[string]error, error) {
	raw, _, err := v.target.ManifestByDigest(ctx, f.e.repo, d)
	if err != nil {
		return nil, nil, err
	}
	return v.policy.CheckRelease(f.e.address, f.version, raw, index, func(l descriptor.Descriptor) ([]byte, error) {
		return provenance.ReadLayer(ctx, v.target, f.e.repo, l)
	}, layers)
}

func sortFindings(ps []Problem) {
	slices.SortFunc(ps, func(a, b Problem) int {
		if a.order != b.order {
			return a.order - b.order
		}
		if n := strings.Compare(a.Platform, b.Platform); n != 0 {
			return n
		}
		return strings.Compare(a.Message, b.Message)
	})
}

func joinOrNone(items []string) string {
	if len(items) == 0 {
		return "none"
	}
	return strings.Join(items, ",")
}
