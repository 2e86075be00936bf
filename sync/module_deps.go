package sync

// Module dependencies inside the air gap (plan key module_dependencies:
// rewrite). Everything here is one unit, kept apart from modules.go so it
// can move with it: the planner attaches a moduleDeps to the plan, and the
// executor, after fetching a package, rewrites its registry module blocks
// to oci:// copies it mirrors on demand (transitively), reporting each
// copy as an item of its own so results and bundles carry it.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	gosync "sync"

	"github.com/hashicorp/go-version"
	"github.com/regclient/regclient/types/errs"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/modsource"
)

// maxDependencyDepth bounds chains of modules calling modules.
const maxDependencyDepth = 16

// errDependencyCycle marks a block calling a module already being mirrored
// up the chain, typically an example directory calling its own package by
// its registry address. The block is left as written, with a warning:
// failing the package over a file tofu never loads would be worse.
var errDependencyCycle = errors.New("dependency cycle")

// moduleDeps resolves and mirrors the registry modules packages call. It
// is shared by every module version of one execution.
type moduleDeps struct {
	lister    ModuleLister
	inventory Inventory
	template  string // target.modules_repository
	registry  string // host in oci:// sources
	inPlan    map[string]bool

	mu    gosync.Mutex
	calls map[string]*depCall // by "repository:tag"
}

// depCall is one dependency version being (or having been) made available.
type depCall struct {
	done   chan struct{}
	source string // oci:// source, //subdir included
	err    error
	// waitingOn is the call this one's mirroring waits for, under
	// moduleDeps.mu: two packages calling each other, reached from two
	// roots at once, would otherwise wait for each other forever.
	waitingOn *depCall
}

// depCallKey keys, in a context, the depCall whose package is being
// mirrored (none for the plan's own modules).
type depCallKey struct{}

// attachModuleDependencies gives plan what the executor needs to rewrite
// dependencies when cfg asks for it. It costs nothing until a package
// calls a registry module.
func (p *Planner) attachModuleDependencies(cfg *config.Config, plan *Plan) {
	if cfg.ModuleDependencies != config.ModuleDependenciesRewrite {
		return // warn: the plan's JSON stays as it always was
	}
	plan.ModuleDependencies = cfg.ModuleDependencies
	plan.deps = &moduleDeps{
		lister:    p.moduleLister(),
		inventory: p.inventory,
		template:  cfg.Target.ModulesRepository,
		registry:  sourceRegistry(cfg.Target),
		inPlan:    modulesInPlan(plan),
		calls:     map[string]*depCall{},
	}
}

// rewriteDependencies rewrites the registry module blocks of the package
// in pkgDir (module name at chain's end) to oci:// copies, mirroring each
// dependency version first. It returns the warnings to show for the
// package (blocks it could not rewrite, per file and line, cycles
// included) and the oci:// sources written, which the manifest records for
// later plans. A dependency that could not be mirrored fails the package:
// published half-rewritten, its tag would count as complete and never be
// retried.
func (e *Executor) rewriteDependencies(ctx context.Context, d *moduleDeps, fetcher ModuleSourceFetcher, pkgDir string, chain []string, add func(ItemResult)) (warnings, rewritten []string, err error) {
	var failed []error
	resolve := func(addr, constraint string) (string, error) {
		src, err := e.dependency(ctx, d, fetcher, addr, constraint, chain, add)
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
	for _, r := range rewrites {
		e.logger.Info("rewrote module dependency", "module", chain[len(chain)-1], "file", r.File, "line", r.Line, "from", r.From, "to", r.To)
		rewritten = append(rewritten, r.To)
	}
	for _, p := range problems {
		warnings = append(warnings, p.Error())
	}
	return warnings, rewritten, nil
}

// dependency returns the oci:// source of the newest upstream version of
// addr meeting constraint, mirroring it (and, in turn, its dependencies)
// when the target lacks it. Concurrent callers share one mirroring.
func (e *Executor) dependency(ctx context.Context, d *moduleDeps, fetcher ModuleSourceFetcher, addr, constraint string, chain []string, add func(ItemResult)) (string, error) {
	if slices.Contains(chain, addr) {
		return "", fmt.Errorf("%w: %s -> %s", errDependencyCycle, strings.Join(chain, " -> "), addr)
	}
	if len(chain) >= maxDependencyDepth {
		return "", fmt.Errorf("more than %d levels of module dependencies: %s", maxDependencyDepth, strings.Join(chain, " -> "))
	}
	if d.lister == nil {
		return "", errors.New("no module registry client configured")
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
	if !running {
		call = &depCall{done: make(chan struct{})}
		d.calls[key] = call
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
	call.source, call.err = e.ensureDependency(context.WithValue(ctx, depCallKey{}, call), d, fetcher, a, repo, ver, tag, append(slices.Clone(chain), addr), add)
	return call.source, call.err
}

// ensureDependency makes version ver of module a available at repo:tag:
// an existing module package is used as it is; otherwise it is fetched,
// its own dependencies rewritten, and published, reported as an item.
func (e *Executor) ensureDependency(ctx context.Context, d *moduleDeps, fetcher ModuleSourceFetcher, a config.ModuleAddr, repo, ver, tag string, chain []string, add func(ItemResult)) (string, error) {
	raw, _, err := d.inventory.Manifest(ctx, repo, tag)
	switch {
	case err == nil:
		if _, err := manifest.ModulePackageLayer(raw); err != nil {
			return "", fmt.Errorf("%s:%s holds something else: %w: %v", repo, tag, ErrConflict, err)
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
	vp := &ModuleVersionPlan{Version: ver, Tag: tag, State: StateMissing, Location: loc, LocationDisplay: modsource.Redact(loc), Subdir: src.Subdir}
	it := ItemResult{Kind: "module", Address: mp.Address, Repository: repo, Version: ver, Tag: tag,
		Warnings: []string{fmt.Sprintf("mirrored as a dependency of %s", strings.Join(chain[:len(chain)-1], " -> "))}}
	it = e.publishModuleVersion(ctx, fetcher, d, mp, vp, d.inPlan, it, chain, add)
	add(it)
	if it.Err != nil {
		return "", it.Err
	}
	return it.Source, nil
}

// newestMeeting picks the newest upstream version of a meeting constraint
// with go-version's rules, as OpenTofu's module installer does: a
// pre-release only when the constraint names it. "" means any version.
func newestMeeting(ctx context.Context, lister ModuleLister, a config.ModuleAddr, constraint string) (string, error) {
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
		v, ok := strictVersion(s)
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
