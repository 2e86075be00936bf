// Package prune finds, and on request deletes, the version artifacts in
// the plan's repositories that the plan no longer selects: versions its
// constraint excludes, and versions older than an entry's "newest: N".
//
// The selection is the one verify uses ([config.Selection] over the
// target's tags), so prune deletes exactly the versions verify no longer
// checks, and works inside an air gap without upstream. Only our own
// version artifacts are touched: a version tag holding anything else (a
// conflict), a non-version tag, and a manifest another tag still uses
// stay. Repositories the plan does not map are never read.
//
// Order of deletion, per version, parents first: the version tag alone
// (OpenTofu no longer sees the version, and everything under it is still
// whole); the tag's manifest (provider index or module package) by digest;
// the platform manifests under the index; last the provenance referrer,
// and with it the sha256-<hex> fallback tag on registries without the
// referrers API. So no tag ever points at a half-deleted artifact, and the
// fallback tag, named after the index, stays as the trace of unfinished
// work until the very last request. (Deleting the index by digest first
// is not enough: the distribution registry deletes the manifest before it
// untags, so a prune killed mid-request leaves a tag that resolves to
// nothing, which OpenTofu would list and fail to install.) Blobs are
// never deleted: their space comes back with the registry's own garbage
// collection.
//
// An interrupted prune (SIGKILL) is finished by the next run: tags still
// there are pruned again, a listed tag that no longer resolves is removed,
// and a fallback tag whose subject no tag points at and whose version the
// plan no longer selects is finished as an orphan (its index, platform
// manifests and provenance). On registries with the referrers API no
// fallback tag exists; what a killed prune left there is untagged, and the
// registry's garbage collection of untagged manifests reclaims it.
package prune

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/hashicorp/go-version"
	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient/types/descriptor"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/engine"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/sched"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/target"
)

// ErrNoEntries refuses a plan without provider or module entries: with
// nothing selected, everything would look prunable.
var ErrNoEntries = errors.New("the plan has no provider or module entries: refusing to prune")

// Target is what prune reads and deletes; [target.Target] is one.
type Target interface {
	target.TagLister
	target.TagResolver
	target.ManifestFetcher
	target.ManifestChecker
	target.ReferrerLister
	target.TagDeleter
	target.ManifestDeleter
}

// State is what became of one candidate.
type State string

// States of a [Candidate].
const (
	// Listed: the plan no longer selects it; nothing was deleted (no --apply).
	Listed State = "listed"
	// Deleted: its tag, manifests and provenance are gone.
	Deleted State = "deleted"
	// Kept: not ours to delete (see Candidate.Detail); it stays.
	Kept State = "kept"
	// Failed: deleting failed part way or reading it failed; see Err.
	Failed State = "failed"
)

// Candidate is one version tag the plan no longer selects, or an orphan
// provenance an interrupted prune left (Version "" then, Tag its fallback
// tag).
type Candidate struct {
	Kind       item.Kind `json:"kind"`
	Address    string    `json:"address"`
	Repository string    `json:"repository"`
	Version    string    `json:"version,omitempty"`
	Tag        string    `json:"tag"`
	// Reason says why the plan does not select it.
	Reason string `json:"reason"`
	State  State  `json:"state"`
	// Detail explains Kept.
	Detail string `json:"detail,omitempty"`
	// Digest is the manifest the tag pointed at.
	Digest string `json:"digest,omitempty"`
	// Children are the platform manifests of a provider index.
	Children []string `json:"children,omitempty"`
	// Provenance are the provenance referrers of the index.
	Provenance []string `json:"provenance,omitempty"`
	Err        error    `json:"-"`
	// Error is Err's message, for JSON.
	Error string `json:"error,omitempty"`
}

// Report is the outcome of [Run].
type Report struct {
	// Applied says deletes were made (--apply).
	Applied bool `json:"applied"`
	// Candidates in plan order, then by version.
	Candidates []Candidate `json:"candidates"`
	// Deletes counts the DELETE requests sent.
	Deletes int `json:"deletes"`
}

// Count is how many candidates are in state s.
func (r *Report) Count(s State) int {
	n := 0
	for _, c := range r.Candidates {
		if c.State == s {
			n++
		}
	}
	return n
}

// Err joins the failures of the candidates, nil when none failed.
func (r *Report) Err() error {
	var errs []error
	for _, c := range r.Candidates {
		if c.Err != nil {
			errs = append(errs, c.Err)
		}
	}
	return errors.Join(errs...)
}

// Option configures [Run].
type Option func(*pruner)

// WithApply makes Run delete; without it Run only lists.
func WithApply(apply bool) Option { return func(p *pruner) { p.apply = apply } }

// WithConcurrency bounds the repositories read at once (default 4).
func WithConcurrency(n int) Option {
	return func(p *pruner) {
		if n > 0 {
			p.concurrency = n
		}
	}
}

// WithLogger logs each deletion.
func WithLogger(l *slog.Logger) Option { return func(p *pruner) { p.logger = l } }

type pruner struct {
	tg          Target
	apply       bool
	concurrency int
	logger      *slog.Logger

	mu      sync.Mutex
	deletes int
}

// entry is one plan entry as prune sees it.
type entry struct {
	kind          item.Kind
	address, repo string
	sel           config.Selection
	module        bool
}

// Run lists (and with [WithApply] deletes) what cfg no longer selects in
// cfg's repositories. Cost per repository: its tag-list pages, one GET per
// tag (to learn which manifests other tags still use), one referrers
// lookup per prunable provider version; with apply, one DELETE per
// manifest deleted. A registry refusing deletes stops the run with
// [target.ErrDeleteForbidden] after the first refused request, before any
// other delete.
func Run(ctx context.Context, cfg *config.Config, tg Target, opts ...Option) (*Report, error) {
	p := &pruner{tg: tg, concurrency: 4, logger: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(p)
	}
	var entries []entry
	for _, pr := range cfg.Providers {
		entries = append(entries, entry{kind: item.Provider, address: pr.Source.String(), repo: pr.Repository, sel: pr.Selection()})
	}
	for _, m := range cfg.Modules {
		entries = append(entries, entry{kind: item.Module, address: m.Source.String(), repo: m.Repository, sel: m.Selection(), module: true})
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("%s: %w", cfg.Path, ErrNoEntries)
	}
	found := make([][]Candidate, len(entries))
	errs := make([]error, len(entries))
	sched.Each(len(entries), p.concurrency, func(i int) { found[i], errs[i] = p.entry(ctx, entries[i]) })
	rep := &Report{Applied: p.apply, Candidates: []Candidate{}}
	for _, cs := range found {
		rep.Candidates = append(rep.Candidates, cs...)
	}
	for i := range rep.Candidates {
		if c := &rep.Candidates[i]; c.Err != nil {
			c.Error = c.Err.Error()
		}
	}
	rep.Deletes = p.deletes
	for _, err := range errs {
		if errors.Is(err, target.ErrDeleteForbidden) {
			return rep, err
		}
	}
	if err := errors.Join(errs...); err != nil {
		return rep, err
	}
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("%w: prune: %w", item.ErrInterrupted, err)
	}
	return rep, nil
}

// fallbackTagRe is the referrers fallback tag of a sha256 subject.
var fallbackTagRe = regexp.MustCompile(`^sha256-([0-9a-f]{64})$`)

// versionTag is a tag that names a version.
type versionTag struct {
	tag string
	v   *version.Version
}

// entry finds (and prunes) one entry's candidates.
func (p *pruner) entry(ctx context.Context, e entry) ([]Candidate, error) {
	tags, err := p.tg.Tags(ctx, e.repo)
	if err != nil {
		return nil, fmt.Errorf("%s %s: listing tags of %s: %w", e.kind, e.address, e.repo, err)
	}
	var vts []versionTag
	var others []string
	for _, tag := range tags {
		s := manifest.VersionFromTag(tag)
		if e.module {
			s = strings.TrimPrefix(s, "v")
		}
		if v, ok := manifest.ParseStrictVersion(s); ok {
			vts = append(vts, versionTag{tag: tag, v: v})
		} else {
			others = append(others, tag)
		}
	}
	all := make([]*version.Version, len(vts))
	for i, vt := range vts {
		all[i] = vt.v
	}
	kept := e.sel.Select(all)
	var doomed []versionTag
	var keepTags []string
	for _, vt := range vts {
		if slices.ContainsFunc(kept, vt.v.Equal) {
			keepTags = append(keepTags, vt.tag)
		} else {
			doomed = append(doomed, vt)
		}
	}
	slices.SortFunc(doomed, func(a, b versionTag) int { return a.v.Compare(b.v) })

	// What every surviving tag uses must stay, whoever pushed it.
	inUse, tagged, err := p.inUse(ctx, e, append(keepTags, others...))
	if err != nil {
		return nil, err
	}
	var out []Candidate
	for _, vt := range doomed {
		if ctx.Err() != nil {
			break
		}
		c := Candidate{Kind: e.kind, Address: e.address, Repository: e.repo, Version: vt.v.Original(), Tag: vt.tag,
			Reason: reason(e.sel, vt.v), State: Listed}
		if err := p.version(ctx, e, &c, inUse); err != nil {
			c.State, c.Err = Failed, fmt.Errorf("%s %s %s: %w", e.kind, e.address, c.Version, err)
			if errors.Is(err, target.ErrDeleteForbidden) {
				return append(out, c), err
			}
		}
		if c.Digest != "" {
			tagged[digest.Digest(c.Digest)] = true // handled above, not an orphan
		}
		out = append(out, c)
	}
	orphans, err := p.orphans(ctx, e, others, tagged, all)
	return append(out, orphans...), err
}

// reason says why sel does not keep v.
func reason(sel config.Selection, v *version.Version) string {
	if !sel.Constraints.Allows(v.Original()) {
		return "outside the constraint"
	}
	return fmt.Sprintf("older than the %d newest", sel.Newest)
}

// inUse reads each surviving tag and returns every manifest digest they
// reach (the tag's manifest and, for an index, its manifests), and the
// digests the tags point at directly.
func (p *pruner) inUse(ctx context.Context, e entry, tags []string) (map[digest.Digest]string, map[digest.Digest]bool, error) {
	inUse := map[digest.Digest]string{}
	tagged := map[digest.Digest]bool{}
	for _, tag := range tags {
		raw, desc, err := p.tg.Manifest(ctx, e.repo, tag)
		if target.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s %s: reading tag %s of %s: %w", e.kind, e.address, tag, e.repo, err)
		}
		inUse[desc.Digest], tagged[desc.Digest] = tag, true
		if parsed, err := manifest.Parse(raw); err == nil {
			for _, m := range parsed.Manifests {
				inUse[m.Digest] = tag
			}
		}
	}
	return inUse, tagged, nil
}

// version checks one candidate is ours and, with apply, deletes it.
func (p *pruner) version(ctx context.Context, e entry, c *Candidate, inUse map[digest.Digest]string) error {
	raw, desc, err := p.tg.Manifest(ctx, e.repo, c.Tag)
	if target.IsNotFound(err) {
		// Listed but resolving to nothing: what a registry that deletes
		// the manifest before untagging leaves when interrupted.
		c.Detail = "the tag resolves to no manifest"
		if p.apply {
			if err := p.deleteTag(ctx, e.repo, c.Tag); err != nil {
				return err
			}
			c.State = Deleted
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading tag %s: %w", c.Tag, err)
	}
	c.Digest = desc.Digest.String()
	var children []digest.Digest
	if e.module {
		if at := manifest.ArtifactTypeOf(raw); at != manifest.ModulePackageArtifactType {
			c.State, c.Detail = Kept, fmt.Sprintf("not a module package of ours (artifactType %q): left alone", at)
			return nil
		}
	} else {
		cmp := engine.CompareProviderIndex(raw, nil)
		if cmp.State == item.Conflict {
			c.State, c.Detail = Kept, "not a provider index of ours: "+cmp.Detail+": left alone"
			return nil
		}
		for _, key := range cmp.Existing.PlatformKeys() {
			d := cmp.Existing.Platforms[key].Manifest.Digest
			if other, used := inUse[d]; used {
				c.Detail += fmt.Sprintf("platform manifest %s stays: tag %s uses it; ", d, other)
				continue
			}
			children = append(children, d)
			c.Children = append(c.Children, d.String())
		}
	}
	if other, used := inUse[desc.Digest]; used {
		c.State, c.Detail = Kept, fmt.Sprintf("tag %s points at the same manifest: deleting it would delete that tag too", other)
		return nil
	}
	var provenance []digest.Digest
	if !e.module {
		refs, err := p.tg.Referrers(ctx, e.repo, desc.Digest, manifest.ProvenanceArtifactType)
		if err != nil {
			return err
		}
		for _, r := range refs {
			provenance = append(provenance, r.Digest)
			c.Provenance = append(c.Provenance, r.Digest.String())
		}
	}
	if !p.apply {
		return nil
	}
	if err := p.deleteTag(ctx, e.repo, c.Tag); err != nil {
		return err
	}
	if err := p.deleteArtifact(ctx, e.repo, desc.Digest, children, provenance); err != nil {
		return err
	}
	c.State = Deleted
	p.logger.Info("pruned", string(e.kind), e.address, "version", c.Version, "repository", e.repo, "digest", c.Digest)
	return nil
}

// orphans finds what an interrupted prune left: a fallback tag listing
// only our provenance, whose subject no tag points at and is either gone
// or an index of a version the plan no longer selects (all are the
// versions tagged).
func (p *pruner) orphans(ctx context.Context, e entry, others []string, tagged map[digest.Digest]bool, all []*version.Version) ([]Candidate, error) {
	if e.module {
		return nil, nil
	}
	var out []Candidate
	for _, tag := range others {
		m := fallbackTagRe.FindStringSubmatch(tag)
		if m == nil {
			continue
		}
		subject := digest.NewDigestFromEncoded(digest.SHA256, m[1])
		if tagged[subject] {
			continue
		}
		exists, err := p.tg.ManifestExists(ctx, e.repo, subject)
		if err != nil {
			return out, err
		}
		var children []digest.Digest
		if exists {
			// An untagged index: a prune killed after the tag, or a sync
			// between its index and its tag. Only a version the plan no
			// longer selects is finished.
			var v *version.Version
			children, v = p.untaggedIndex(ctx, e, subject)
			if v == nil || e.sel.Keeps(v, all) {
				continue
			}
		}
		raw, _, err := p.tg.Manifest(ctx, e.repo, tag)
		if err != nil {
			if target.IsNotFound(err) {
				continue
			}
			return out, err
		}
		parsed, err := manifest.Parse(raw)
		if err != nil || len(parsed.Manifests) == 0 || slices.ContainsFunc(parsed.Manifests, func(d descriptor.Descriptor) bool {
			return d.ArtifactType != manifest.ProvenanceArtifactType
		}) {
			continue // someone else's referrers: left alone
		}
		c := Candidate{Kind: e.kind, Address: e.address, Repository: e.repo, Tag: tag, State: Listed,
			Reason: "left by an interrupted prune: untagged index " + subject.String()}
		var provenance []digest.Digest
		for _, d := range parsed.Manifests {
			provenance = append(provenance, d.Digest)
			c.Provenance = append(c.Provenance, d.Digest.String())
		}
		if exists {
			c.Digest = subject.String()
			for _, d := range children {
				c.Children = append(c.Children, d.String())
			}
		}
		if p.apply {
			var err error
			if exists {
				err = p.deleteArtifact(ctx, e.repo, subject, children, provenance)
			} else {
				err = p.deleteArtifact(ctx, e.repo, "", nil, provenance)
			}
			if err != nil {
				c.State, c.Err = Failed, fmt.Errorf("%s %s: %s: %w", e.kind, e.address, c.Reason, err)
				return append(out, c), err
			}
			c.State = Deleted
		}
		out = append(out, c)
	}
	return out, nil
}

// untaggedIndex reads an untagged provider index and returns its
// platform manifests and the version their packages' file names give
// (terraform-provider-TYPE_VERSION_OS_ARCH.zip); a nil version when it is
// not an index of ours or says no version.
func (p *pruner) untaggedIndex(ctx context.Context, e entry, d digest.Digest) ([]digest.Digest, *version.Version) {
	raw, _, err := p.tg.ManifestByDigest(ctx, e.repo, d)
	if err != nil {
		return nil, nil
	}
	cmp := engine.CompareProviderIndex(raw, nil)
	if cmp.State == item.Conflict || len(cmp.Existing.Platforms) == 0 {
		return nil, nil
	}
	var children []digest.Digest
	var v *version.Version
	for _, key := range cmp.Existing.PlatformKeys() {
		pm := cmp.Existing.Platforms[key]
		children = append(children, pm.Manifest.Digest)
		if v != nil {
			continue
		}
		child, _, err := p.tg.ManifestByDigest(ctx, e.repo, pm.Manifest.Digest)
		if err != nil {
			continue
		}
		parsed, err := manifest.Parse(child)
		if err != nil || len(parsed.Layers) != 1 {
			continue
		}
		name := strings.TrimSuffix(parsed.Layers[0].Annotations[manifest.TitleAnnotation], "_"+key+".zip")
		if i := strings.LastIndexByte(name, '_'); i >= 0 && strings.HasPrefix(name, "terraform-provider-") {
			v, _ = manifest.ParseStrictVersion(name[i+1:])
		}
	}
	return children, v
}

// deleteArtifact deletes an untagged artifact, parent first: the manifest
// d (skipped when ""), its children, then its provenance referrers.
func (p *pruner) deleteArtifact(ctx context.Context, repo string, d digest.Digest, children, provenance []digest.Digest) error {
	if d != "" {
		if err := p.delete(ctx, repo, d, false); err != nil {
			return err
		}
	}
	for _, c := range children {
		if err := p.delete(ctx, repo, c, false); err != nil {
			return err
		}
	}
	for _, pd := range provenance {
		if err := p.delete(ctx, repo, pd, true); err != nil {
			return err
		}
	}
	return nil
}

func (p *pruner) deleteTag(ctx context.Context, repo, tag string) error {
	p.mu.Lock()
	p.deletes++
	p.mu.Unlock()
	return p.tg.DeleteTag(ctx, repo, tag)
}

func (p *pruner) delete(ctx context.Context, repo string, d digest.Digest, referrer bool) error {
	p.mu.Lock()
	p.deletes++
	p.mu.Unlock()
	return p.tg.DeleteManifest(ctx, repo, d, referrer)
}
