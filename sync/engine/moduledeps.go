package engine

// Module dependencies inside the air gap (plan key module_dependencies:
// rewrite), the module kind's own step: planning attaches a moduleDeps to
// the plan, and each run, after fetching a package, rewrites its registry
// module blocks to oci:// copies it mirrors on demand (transitively),
// reporting each copy as an item of its own so results and bundles carry
// it.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-version"
	"github.com/regclient/regclient/types/errs"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/modsource"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/target"
)

// maxDependencyDepth bounds chains of modules calling modules.
const maxDependencyDepth = 16

// errDependencyCycle marks a block calling a module already being mirrored
// up the chain, typically an example directory calling its own package by
// its registry address. The block is left as written, with a warning:
// failing the package over a file tofu never loads would be worse.
var errDependencyCycle = errors.New("dependency cycle")

// moduleDeps is what a plan with module_dependencies: rewrite carries for
// its execution: where dependency copies go and how their sources read.
type moduleDeps struct {
	template string // target.modules_repository
	registry string // host in oci:// sources
}

// depRun resolves and mirrors the registry modules packages call. It is
// shared by every module version of one execution.
type depRun struct {
	*moduleDeps
	lister    ModuleSource
	inventory target.TagReader

	mu    sync.Mutex
	calls map[string]*depCall // by "repository:tag"
}

// depCall is one dependency version being (or having been) made available.
type depCall struct {
	done   chan struct{}
	source string // oci:// source, //subdir included
	err    error
	// waitingOn is the call this one's mirroring waits for, under
	// depRun.mu: two packages calling each other, reached from two
	// roots at once, would otherwise wait for each other forever.
	waitingOn *depCall
	// claimed says, under depRun.mu, that someone mirrors this version.
	claimed bool
	// mp and vp are set for a version the plan itself mirrors: whoever
	// reaches it first (its own item or a package calling it) publishes
	// it, once, and the plan's item reports it (result, when a package
	// calling it published it), so a run or a bundle holds it once.
	mp     *ModulePlan
	vp     *ModuleVersionPlan
	result item.Result
}

// depCallKey keys, in a context, the depCall whose package is being
// mirrored (none for the plan's own modules).
type depCallKey struct{}

// attachModuleDependencies gives plan what execution needs to rewrite
// dependencies when cfg asks for it. It costs nothing until a package
// calls a registry module.
func attachModuleDependencies(cfg *config.Config, plan *Plan) {
	if cfg.ModuleDependencies != config.ModuleDependenciesRewrite {
		return // warn: the plan's JSON stays as it always was
	}
	plan.ModuleDependencies = cfg.ModuleDependencies
	plan.deps = &moduleDeps{template: cfg.Target.ModulesRepository, registry: sourceRegistry(cfg.Target)}
}

// dependencies is the run's dependency state for plan, or nil when plan
// does not rewrite dependencies.
func (r *run) dependencies(plan *Plan) *depRun {
	if plan.deps == nil {
		return nil
	}
	d := &depRun{moduleDeps: plan.deps, lister: r.e.up, inventory: r.e.inventory, calls: map[string]*depCall{}}
	for i := range plan.Modules {
		mp := &plan.Modules[i]
		for j := range mp.Versions {
			if vp := &mp.Versions[j]; vp.State.Pending() && vp.Err == nil {
				d.calls[mp.Repository+":"+vp.Tag] = &depCall{done: make(chan struct{}), mp: mp, vp: vp}
			}
		}
	}
	return d
}

// plannedCall is the call of the plan's own version vp at repo, or nil
// when d is nil (no rewrite) or vp is not pending.
func (d *depRun) plannedCall(repo string, vp *ModuleVersionPlan) *depCall {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if call := d.calls[repo+":"+vp.Tag]; call != nil && call.vp == vp {
		return call
	}
	return nil
}

// planned mirrors a version of the plan's own with module_dependencies:
// rewrite. It claims the version's call once it holds a slot (claiming
// before could deadlock: packages holding every slot would wait for a
// version waiting for a slot); when a package calling the version
// claimed it first, it gives the slot back and reports what that
// mirroring published.
func (r *run) planned(ctx context.Context, call *depCall, name string, it item.Result) item.Result {
	release, err := r.slot(ctx, name)
	if err != nil {
		it.Fail(err)
		return it
	}
	d := r.deps
	d.mu.Lock()
	claimed := call.claimed
	call.claimed = true
	d.mu.Unlock()
	if claimed {
		release()
		select {
		case <-call.done:
		case <-ctx.Done():
			it.Fail(fmt.Errorf("%s: %w: %w", name, item.ErrInterrupted, ctx.Err()))
			return it
		}
		res := call.result
		it.Source, it.Digest, it.Downloaded, it.Uploaded, it.Warnings = res.Source, res.Digest, res.Downloaded, res.Uploaded, res.Warnings
		if res.Err != nil {
			it.Fail(res.Err)
		}
		return it
	}
	defer release()
	defer close(call.done)
	it = r.publishModuleVersion(context.WithValue(ctx, depCallKey{}, call), call.mp, call.vp, it, []string{call.mp.Address})
	call.source, call.err = it.Source, it.Err
	return it
}

// rewriteDependencies rewrites the registry module blocks of the package
// in pkgDir (module name at chain's end) to oci:// copies, mirroring each
// dependency version first. It returns the warnings to show for the
// package (blocks it could not rewrite, per file and line, cycles
// included) and the oci:// sources written, which the manifest records for
// later plans. A dependency that could not be mirrored fails the package:
// published half-rewritten, its tag would count as complete and never be
// retried.
func (r *run) rewriteDependencies(ctx context.Context, pkgDir string, chain []string) (warnings, rewritten []string, err error) {
	var failed []error
	resolve := func(addr, constraint string) (string, error) {
		src, err := r.dependency(ctx, addr, constraint, chain)
		if err != nil && !errors.Is(err, errDependencyCycle) {
			failed = append(failed, fmt.Errorf("dependency %s %q: %w", addr, constraint, err))
		}
		return src, err
	}
	rewrites, problems, err := modsource.RewriteRegistrySources(pkgDir, resolve)
	if err != nil {
		return nil, nil, err
	}
	if len(failed) > 0 {
		return nil, nil, errors.Join(failed...)
	}
	for _, rw := range rewrites {
		r.e.logger.Info("rewrote module dependency", "module", chain[len(chain)-1], "file", rw.File, "line", rw.Line, "from", rw.From, "to", rw.To)
		rewritten = append(rewritten, rw.To)
	}
	for _, p := range problems {
		warnings = append(warnings, p.Error())
	}
	return warnings, rewritten, nil
}

// dependency returns the oci:// source of the newest upstream version of
// addr meeting constraint, mirroring it (and, in turn, its dependencies)
// when the target lacks it. Concurrent callers share one mirroring.
func (r *run) dependency(ctx context.Context, addr, constraint string, chain []string) (string, error) {
	d := r.deps
	if slices.Contains(chain, addr) {
		return "", fmt.Errorf("%w: %s -> %s", errDependencyCycle, strings.Join(chain, " -> "), addr)
	}
	if len(chain) >= maxDependencyDepth {
		return "", fmt.Errorf("more than %d levels of module dependencies: %s", maxDependencyDepth, strings.Join(chain, " -> "))
	}
	a, err := config.ParseModuleAddr(addr)
	if err != nil {
		return "", err
	}
	repo, err := config.RenderModuleRepository(d.template, a)
	if err != nil {
		return "", err
	}
	ver, err := newestMeeting(ctx, d.lister, a, constraint)
	if err != nil {
		return "", err
	}
	tag := manifest.Tag(ver)
	key := repo + ":" + tag
	self, _ := ctx.Value(depCallKey{}).(*depCall)
	d.mu.Lock()
	call, running := d.calls[key]
	switch {
	case !running:
		call = &depCall{done: make(chan struct{}), claimed: true}
		d.calls[key] = call
	case !call.claimed: // a version of the plan's own nobody started yet
		call.claimed, running = true, false
	}
	if running && self != nil {
		for c := call; c != nil; c = c.waitingOn {
			if c == self {
				d.mu.Unlock()
				return "", fmt.Errorf("%w: %s -> %s, which is being mirrored for another module and waits for this one", errDependencyCycle, strings.Join(chain, " -> "), addr)
			}
		}
		self.waitingOn = call
	}
	d.mu.Unlock()
	if running {
		defer func() {
			if self != nil {
				d.mu.Lock()
				self.waitingOn = nil
				d.mu.Unlock()
			}
		}()
		select {
		case <-call.done:
			return call.source, call.err
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	defer close(call.done)
	ctx, chain = context.WithValue(ctx, depCallKey{}, call), append(slices.Clone(chain), addr)
	if call.vp != nil {
		// The plan mirrors this version too; its own item reports it.
		it := item.Result{Kind: item.Module, Address: call.mp.Address, Repository: call.mp.Repository, Version: call.vp.Version, Tag: call.vp.Tag, Action: item.Create}
		call.result = r.publishModuleVersion(ctx, call.mp, call.vp, it, chain)
		call.source, call.err = call.result.Source, call.result.Err
	} else {
		call.source, call.err = r.ensureDependency(ctx, a, repo, ver, tag, chain)
	}
	return call.source, call.err
}

// ensureDependency makes version ver of module a available at repo:tag:
// an existing module package is used as it is; otherwise it is fetched,
// its own dependencies rewritten, and published, reported as an item.
func (r *run) ensureDependency(ctx context.Context, a config.ModuleAddr, repo, ver, tag string, chain []string) (string, error) {
	d := r.deps
	raw, _, err := d.inventory.Manifest(ctx, repo, tag)
	switch {
	case err == nil:
		if _, err := manifest.ModulePackageLayer(raw); err != nil {
			return "", fmt.Errorf("%s:%s holds something else: %w: %v", repo, tag, item.ErrConflict, err)
		}
		return ModuleOCISource(d.registry, repo, manifest.ModulePackageInfoOf(raw).Subdir, tag), nil
	case !errors.Is(err, errs.ErrNotFound):
		return "", err
	}
	loc, err := d.lister.ModuleLocation(ctx, a, ver)
	if err != nil {
		return "", err
	}
	src, err := modsource.Parse(loc)
	if err != nil {
		return "", err
	}
	mp := &ModulePlan{Source: a, Address: a.String(), Repository: repo, Registry: d.registry}
	vp := &ModuleVersionPlan{Version: ver, Tag: tag, State: item.Missing, Location: loc, LocationDisplay: modsource.Redact(loc), Subdir: src.Subdir,
		OCISource: ModuleOCISource(d.registry, repo, src.Subdir, tag)}
	it := item.Result{Kind: item.Module, Address: mp.Address, Repository: repo, Version: ver, Tag: tag, Action: item.Create,
		Warnings: []string{fmt.Sprintf("mirrored as a dependency of %s", strings.Join(chain[:len(chain)-1], " -> "))}}
	start := time.Now()
	it = r.publishModuleVersion(ctx, mp, vp, it, chain)
	it.Duration = time.Since(start)
	if it.Err == nil {
		it.State = item.Done
	}
	r.add(it)
	if it.Err != nil {
		return "", it.Err
	}
	return it.Source, nil
}

// newestMeeting picks the newest upstream version of a meeting constraint
// with go-version's rules, as OpenTofu's module installer does: a
// pre-release only when the constraint names it. "" means any version.
func newestMeeting(ctx context.Context, lister ModuleSource, a config.ModuleAddr, constraint string) (string, error) {
	var cons version.Constraints
	if strings.TrimSpace(constraint) != "" {
		var err error
		if cons, err = version.NewConstraint(constraint); err != nil {
			return "", fmt.Errorf("version constraint %q: %w", constraint, err)
		}
	}
	listed, err := lister.ModuleVersions(ctx, a)
	if err != nil {
		return "", err
	}
	var cands []*version.Version
	for _, s := range listed {
		v, ok := manifest.ParseStrictVersion(s)
		if !ok || (cons == nil && v.Prerelease() != "") || (cons != nil && !cons.Check(v)) {
			continue
		}
		cands = append(cands, v)
	}
	if len(cands) == 0 {
		return "", fmt.Errorf("module %s: no upstream version meets %q", a, constraint)
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].LessThan(cands[j]) })
	return cands[len(cands)-1].Original(), nil
}
