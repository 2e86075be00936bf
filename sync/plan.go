package sync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"strings"
	gosync "sync"

	"github.com/hashicorp/go-version"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/errs"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/upstream"
)

// State says how much of a version the target already holds.
type State string

// The states of a planned version.
const (
	// StateMissing: the tag does not exist; everything is to copy.
	StateMissing State = "missing"
	// StateIncomplete: a valid index exists but lacks wanted platforms; the
	// new index is the union of old and new platforms, re-tagged.
	StateIncomplete State = "incomplete"
	// StateComplete: nothing to do.
	StateComplete State = "complete"
	// StateConflict: the tag holds something that is not an OpenTofu
	// artifact of the expected kind. Reported, never overwritten.
	StateConflict State = "conflict"
)

// Pending reports whether executing the plan would change this version.
func (s State) Pending() bool { return s == StateMissing || s == StateIncomplete }

// Plan is what the target lacks compared with upstream, per provider and
// version. It is computed without writing anything.
type Plan struct {
	Target    string         `json:"target"`
	Providers []ProviderPlan `json:"providers"`
	Modules   []ModulePlan   `json:"modules"`
}

// ProviderPlan is the plan for one provider of the plan file.
type ProviderPlan struct {
	Source     config.ProviderAddr   `json:"-"`
	Address    string                `json:"address"`
	Repository string                `json:"repository"`
	Versions   []ProviderVersionPlan `json:"versions"`
	Warnings   []string              `json:"warnings,omitempty"`
	// Err is why this provider could not be planned (upstream or target
	// unreachable, unknown provider); its versions are then unknown.
	Err      error  `json:"-"`
	ErrorMsg string `json:"error,omitempty"`
}

// ProviderVersionPlan is the state of one upstream version in the target.
type ProviderVersionPlan struct {
	Version string `json:"version"`
	Tag     string `json:"tag"`
	State   State  `json:"state"`
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

// Pending counts the versions that executing the plan would change.
func (p *Plan) Pending() int {
	n := 0
	for _, pp := range p.Providers {
		for _, v := range pp.Versions {
			if v.State.Pending() {
				n++
			}
		}
	}
	for _, mp := range p.Modules {
		for _, v := range mp.Versions {
			if v.State.Pending() && v.Err == nil {
				n++
			}
		}
	}
	return n
}

// Errors joins the planning failures of every provider, or returns nil.
func (p *Plan) Errors() error {
	var errs []error
	for _, pp := range p.Providers {
		if pp.Err != nil {
			errs = append(errs, pp.Err)
		}
	}
	for _, mp := range p.Modules {
		if mp.Err != nil {
			errs = append(errs, mp.Err)
		}
		for _, v := range mp.Versions {
			if v.Err != nil {
				errs = append(errs, v.Err)
			}
		}
	}
	return errors.Join(errs...)
}

// Conflicts counts the versions whose tag holds a foreign artifact.
func (p *Plan) Conflicts() int {
	n := 0
	for _, pp := range p.Providers {
		for _, v := range pp.Versions {
			if v.State == StateConflict {
				n++
			}
		}
	}
	for _, mp := range p.Modules {
		for _, v := range mp.Versions {
			if v.State == StateConflict {
				n++
			}
		}
	}
	return n
}

// ProviderVersionLister lists the versions an upstream registry offers.
type ProviderVersionLister interface {
	ProviderVersions(ctx context.Context, a config.ProviderAddr) (*upstream.ProviderVersions, error)
}

// Inventory is what the planner reads of the target: its tags and the
// manifest behind a tag. [Target] is one; a bundle baseline is another.
type Inventory interface {
	Tags(ctx context.Context, repo string) ([]string, error)
	Manifest(ctx context.Context, repo, tag string) ([]byte, descriptor.Descriptor, error)
}

// Planner computes plans.
type Planner struct {
	upstream    ProviderVersionLister
	modules     ModuleLister // nil: upstream, if it lists modules
	inventory   Inventory
	concurrency int
	logger      *slog.Logger
}

// PlannerOption configures a [Planner].
type PlannerOption func(*Planner)

// WithPlanConcurrency bounds how many providers are planned at once (default 4).
func WithPlanConcurrency(n int) PlannerOption {
	return func(p *Planner) {
		if n > 0 {
			p.concurrency = n
		}
	}
}

// WithPlanLogger sets the logger.
func WithPlanLogger(l *slog.Logger) PlannerOption { return func(p *Planner) { p.logger = l } }

// NewPlanner returns a planner reading upstream versions from up and the
// target's content from inv.
func NewPlanner(up ProviderVersionLister, inv Inventory, opts ...PlannerOption) *Planner {
	p := &Planner{upstream: up, inventory: inv, concurrency: 4, logger: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Plan computes what the target lacks for every provider of cfg. Failures
// are kept per provider (see [Plan.Errors]) so one unreachable provider
// does not hide the others. Per provider it costs one upstream versions
// call, the target's tag-list pages, and one manifest read per matching
// version already tagged: no download calls, no package downloads.
func (p *Planner) Plan(ctx context.Context, cfg *config.Config, target string) *Plan {
	plan := &Plan{Target: target, Providers: make([]ProviderPlan, len(cfg.Providers))}
	sem := make(chan struct{}, p.concurrency)
	var wg gosync.WaitGroup
	for i, prov := range cfg.Providers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			plan.Providers[i] = p.planProvider(ctx, prov)
		}()
	}
	p.planModules(ctx, cfg, plan, sem, &wg)
	wg.Wait()
	checkModuleDependencies(plan)
	return plan
}

func (p *Planner) planProvider(ctx context.Context, prov config.Provider) ProviderPlan {
	pp := ProviderPlan{Source: prov.Source, Address: prov.Source.String(), Repository: prov.Repository, Versions: []ProviderVersionPlan{}}
	fail := func(err error) ProviderPlan {
		pp.Err = named("provider "+pp.Address, err)
		pp.ErrorMsg = pp.Err.Error()
		return pp
	}
	up, err := p.upstream.ProviderVersions(ctx, prov.Source)
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
	}
	var cands []candidate
	for _, uv := range up.Versions {
		v, ok := strictVersion(uv.Version)
		if !ok {
			pp.Warnings = append(pp.Warnings, fmt.Sprintf("upstream version %q is not a valid version: ignored", uv.Version))
			continue
		}
		if !prov.Constraints.Allows(uv.Version) {
			continue
		}
		offered := map[string]bool{}
		for _, pl := range uv.Platforms {
			offered[pl.String()] = true
		}
		if !uv.PlatformsListed {
			// As OpenTofu: ask download per platform; a 404 skips it.
			for _, w := range wanted {
				offered[w] = true
			}
		}
		cands = append(cands, candidate{v: v, offered: offered})
	}
	if len(cands) == 0 {
		pp.Warnings = append(pp.Warnings, fmt.Sprintf("no upstream version matches %q", prov.Versions))
		return pp
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].v.LessThan(cands[j].v) })

	tags, err := p.inventory.Tags(ctx, prov.Repository)
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
			if c.offered[w] {
				vp.Platforms = append(vp.Platforms, w)
			} else {
				vp.Unavailable = append(vp.Unavailable, w)
			}
		}
		if len(vp.Unavailable) > 0 {
			pp.Warnings = append(pp.Warnings, fmt.Sprintf("%s: upstream does not offer %v", ver, vp.Unavailable))
		}
		if !tagged[vp.Tag] {
			vp.State = StateMissing
			vp.Add = vp.Platforms
		} else if err := p.compareExisting(ctx, prov.Repository, &vp); err != nil {
			return fail(err)
		}
		if vp.State.Pending() && len(vp.Platforms) == 0 {
			// Nothing wanted is offered: no index can be built.
			vp.State = StateComplete
			if len(vp.Present) == 0 {
				vp.Detail = "no wanted platform offered upstream"
			}
		}
		pp.Versions = append(pp.Versions, vp)
	}
	return pp
}

// compareExisting reads the index behind an existing tag and sets the
// version's state from the platforms it holds.
func (p *Planner) compareExisting(ctx context.Context, repo string, vp *ProviderVersionPlan) error {
	raw, desc, err := p.inventory.Manifest(ctx, repo, vp.Tag)
	if errors.Is(err, errs.ErrNotFound) {
		// Listed but gone (deleted between the two calls): treat as missing.
		vp.State, vp.Add = StateMissing, vp.Platforms
		return nil
	}
	if err != nil {
		return err
	}
	info, err := manifest.ParseProviderIndex(raw)
	if err != nil {
		vp.State = StateConflict
		vp.Detail = err.Error()
		return nil
	}
	vp.Existing = info
	vp.ExistingDigest = desc.Digest.String()
	vp.Present = info.PlatformKeys()
	for _, pl := range vp.Platforms {
		if _, ok := info.Platforms[pl]; !ok {
			vp.Add = append(vp.Add, pl)
		}
	}
	vp.State = StateComplete
	if len(vp.Add) > 0 {
		vp.State = StateIncomplete
	}
	// Keep the union sorted for stable output.
	slices.Sort(vp.Add)
	return nil
}

var strictVersionRE = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)

// strictVersion parses a version as the registry protocol requires it:
// semver with three numbers and no "v" prefix.
func strictVersion(s string) (*version.Version, bool) {
	if !strictVersionRE.MatchString(s) {
		return nil, false
	}
	v, err := version.NewSemver(s)
	return v, err == nil
}

// named prefixes err with the thing it concerns, unless the error already
// starts by naming it (the upstream client names what it was asked for).
func named(thing string, err error) error {
	if strings.HasPrefix(err.Error(), thing+":") {
		return err
	}
	return fmt.Errorf("%s: %w", thing, err)
}
