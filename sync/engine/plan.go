package engine

import (
	"context"
	"errors"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/sched"
)

// Plan is what the target lacks compared with upstream, per entry of the
// plan file and version. It is computed without writing anything.
type Plan struct {
	Target    string         `json:"target"`
	Providers []ProviderPlan `json:"providers"`
	Modules   []ModulePlan   `json:"modules"`
	// ModuleDependencies is the plan file's module_dependencies policy
	// when it is rewrite; empty means warn (the JSON then leaves it out).
	ModuleDependencies config.ModuleDependencies `json:"module_dependencies,omitempty"`

	// deps, set for module_dependencies: rewrite, says where executing
	// the plan mirrors the registry modules packages call (moduledeps.go).
	deps *moduleDeps
}

// kind is one sort of artifact: how its entries are planned, and how the
// pending versions of a plan are carried out.
type kind interface {
	// plan returns the planning of each of this kind's entries of cfg, to
	// run through the shared scheduler, and a step run once they all ended.
	plan(e *Engine, cfg *config.Config, p *Plan) (tasks []func(context.Context), after func())
	// entries views this kind's part of p for execution and counting.
	entries(p *Plan) []entry
}

// entry is the kind-independent view of one planned entry.
type entry struct {
	kind                item.Kind
	address, repository string
	err                 error // the entry could not be planned
	versions            []versionView
}

// versionView is the kind-independent view of one planned version.
type versionView struct {
	version, tag string
	state        item.State
	digest       string   // of the complete version in the target
	detail       string   // why it conflicts
	err          error    // why a pending version cannot be mirrored
	source       string   // a module's oci:// source, when it is in place
	warnings     []string // for a complete version
	// copy carries out a pending version; it is nil otherwise.
	copy func(ctx context.Context, r *run, it item.Result) item.Result
}

// Plan computes what the target lacks for every entry of cfg. Failures are
// kept per entry (see [Plan.Errors]) so one unreachable provider does not
// hide the others. target names the target in the plan. What it costs per
// entry is documented on each kind (provider.go, module.go): never a
// package download or a git operation.
func (e *Engine) Plan(ctx context.Context, cfg *config.Config, target string) *Plan {
	p := &Plan{Target: target}
	var tasks []func(context.Context)
	var afters []func()
	for _, k := range e.kinds {
		t, after := k.plan(e, cfg, p)
		tasks = append(tasks, t...)
		if after != nil {
			afters = append(afters, after)
		}
	}
	sched.Each(len(tasks), e.metadata, func(i int) { tasks[i](ctx) })
	for _, after := range afters {
		after()
	}
	return p
}

// entries views every kind's part of p, providers first.
func (p *Plan) entries() []entry {
	var out []entry
	for _, k := range []kind{providers{}, modules{}} {
		out = append(out, k.entries(p)...)
	}
	return out
}

// Counts sums up a plan's versions.
type Counts struct {
	// Pending versions would be copied (missing or incomplete, mirrorable).
	Pending int
	// Complete versions are in place.
	Complete int
	// Conflicts are tags holding foreign artifacts.
	Conflicts int
	// Errors are entries that could not be planned and versions that
	// cannot be mirrored.
	Errors int
}

// Count sums up the versions of kind k (every kind when k is "").
func (p *Plan) Count(k item.Kind) Counts {
	var c Counts
	for _, en := range p.entries() {
		if k != "" && en.kind != k {
			continue
		}
		if en.err != nil {
			c.Errors++
			continue
		}
		for _, v := range en.versions {
			switch {
			case v.err != nil:
				c.Errors++
			case v.state == item.Conflict:
				c.Conflicts++
			case v.state.Pending():
				c.Pending++
			default:
				c.Complete++
			}
		}
	}
	return c
}

// Pending counts the versions that executing the plan would change.
func (p *Plan) Pending() int { return p.Count("").Pending }

// Conflicts counts the versions whose tag holds a foreign artifact.
func (p *Plan) Conflicts() int { return p.Count("").Conflicts }

// Errors joins the planning failures of every entry and version, or
// returns nil.
func (p *Plan) Errors() error {
	var errs []error
	for _, en := range p.entries() {
		if en.err != nil {
			errs = append(errs, en.err)
		}
		for _, v := range en.versions {
			if v.err != nil {
				errs = append(errs, v.err)
			}
		}
	}
	return errors.Join(errs...)
}
