package sync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	gosync "sync"
	"time"

	"github.com/hashicorp/go-version"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/errs"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/modsource"
)

// ModuleLister lists the versions of a registry module and resolves where
// a version's package lives. The upstream client is one.
type ModuleLister interface {
	ModuleVersions(ctx context.Context, a config.ModuleAddr) ([]string, error)
	ModuleLocation(ctx context.Context, a config.ModuleAddr, version string) (string, error)
}

// WithModuleLister sets where modules are listed; by default the
// planner's provider lister is used when it can list modules too.
func WithModuleLister(l ModuleLister) PlannerOption { return func(p *Planner) { p.modules = l } }

// ModuleSourceFetcher fetches a module package by its source address into
// dst. [modsource.Fetcher] is one.
type ModuleSourceFetcher interface {
	Fetch(ctx context.Context, source, dst string) (*modsource.Package, error)
}

// WithModuleFetcher sets how module packages are fetched. By default the
// executor builds a [modsource.Fetcher] downloading archives through its
// provider fetcher (when that can fetch URLs, as the upstream client can).
func WithModuleFetcher(f ModuleSourceFetcher) ExecutorOption {
	return func(e *Executor) { e.modules = f }
}

// LayoutRegistry stands for the registry in the oci:// sources of a plan
// whose target is an OCI layout directory: the host is only known once
// the layout is pushed somewhere.
const LayoutRegistry = "REGISTRY"

// ModulePlan is the plan for one module of the plan file.
type ModulePlan struct {
	Source     config.ModuleAddr `json:"-"`
	Address    string            `json:"address"`
	Repository string            `json:"repository"`
	// Registry is the host in the versions' oci:// sources: the target
	// registry, or LayoutRegistry for an OCI layout target.
	Registry string              `json:"registry"`
	Versions []ModuleVersionPlan `json:"versions"`
	// Warnings include registry modules that mirrored versions use but the
	// plan lacks, so people can add them.
	Warnings []string `json:"warnings,omitempty"`
	// Err is why this module could not be planned; its versions are then
	// unknown.
	Err      error  `json:"-"`
	ErrorMsg string `json:"error,omitempty"`
}

// ModuleVersionPlan is the state of one upstream module version in the
// target.
type ModuleVersionPlan struct {
	Version string `json:"version"`
	Tag     string `json:"tag"`
	State   State  `json:"state"`
	// OCISource is what people write as the module's source inside the air
	// gap: oci://REGISTRY/REPOSITORY[//SUBDIR]?tag=TAG.
	OCISource string `json:"oci_source"`
	// Subdir is the //subdir the upstream location names; for a complete
	// version, the one recorded when it was mirrored.
	Subdir string `json:"subdir,omitempty"`
	// Location is the upstream source address of a missing version, as the
	// registry returned it; LocationDisplay is the same with any password
	// hidden. Complete versions are not looked up.
	Location        string `json:"-"`
	LocationDisplay string `json:"location,omitempty"`
	// Dependencies are the registry modules a complete version's package
	// uses, as recorded when it was mirrored; MissingDependencies are
	// those not in the plan.
	Dependencies        []string `json:"dependencies,omitempty"`
	MissingDependencies []string `json:"missing_dependencies,omitempty"`
	// Detail explains a conflict.
	Detail         string `json:"detail,omitempty"`
	ExistingDigest string `json:"existing_digest,omitempty"`
	// Err is why a missing version cannot be mirrored (no location, an
	// unsupported source type); the executor reports it as a failure.
	Err      error  `json:"-"`
	ErrorMsg string `json:"error,omitempty"`
}

// ModuleOCISource renders the oci:// source address of a module version.
func ModuleOCISource(registry, repository, subdir, tag string) string {
	s := "oci://" + registry + "/" + repository
	if subdir != "" {
		s += "//" + subdir
	}
	return s + "?tag=" + tag
}

// ModuleSourceLine renders the line people paste into a module block.
func ModuleSourceLine(ociSource string) string { return fmt.Sprintf("source = %q", ociSource) }

// sourceRegistry is the registry part of the oci:// sources for a target.
func sourceRegistry(t config.Target) string {
	if _, ok := t.LayoutDir(); ok {
		return LayoutRegistry
	}
	return t.Registry
}

// moduleLister is the configured lister, or the provider lister when it
// lists modules too.
func (p *Planner) moduleLister() ModuleLister {
	if p.modules != nil {
		return p.modules
	}
	if l, ok := p.upstream.(ModuleLister); ok {
		return l
	}
	return nil
}

// planModules starts planning every module of cfg on wg, sharing sem with
// the providers. Per module it costs one versions call, the tag-list
// pages, one manifest read per matching version already tagged, and one
// download-endpoint call per missing version (to show its //subdir and
// refuse unsupported sources before any transfer): never a package
// download or a git operation.
func (p *Planner) planModules(ctx context.Context, cfg *config.Config, plan *Plan, sem chan struct{}, wg *gosync.WaitGroup) {
	plan.Modules = make([]ModulePlan, len(cfg.Modules))
	registry := sourceRegistry(cfg.Target)
	lister := p.moduleLister()
	for i, mod := range cfg.Modules {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			plan.Modules[i] = p.planModule(ctx, lister, registry, mod)
		}()
	}
}

func (p *Planner) planModule(ctx context.Context, lister ModuleLister, registry string, mod config.Module) ModulePlan {
	mp := ModulePlan{Source: mod.Source, Address: mod.Source.String(), Repository: mod.Repository, Registry: registry, Versions: []ModuleVersionPlan{}}
	fail := func(err error) ModulePlan {
		mp.Err = named("module "+mp.Address, err)
		mp.ErrorMsg = mp.Err.Error()
		return mp
	}
	if lister == nil {
		return fail(errors.New("no module registry client configured"))
	}
	upVersions, err := lister.ModuleVersions(ctx, mod.Source)
	if err != nil {
		return fail(err)
	}
	var cands []*version.Version
	for _, s := range upVersions {
		v, ok := strictVersion(s)
		if !ok {
			mp.Warnings = append(mp.Warnings, fmt.Sprintf("upstream version %q is not a valid version: ignored", s))
			continue
		}
		if mod.Constraints.Allows(s) {
			cands = append(cands, v)
		}
	}
	if len(cands) == 0 {
		mp.Warnings = append(mp.Warnings, fmt.Sprintf("no upstream version matches %q", mod.Versions))
		return mp
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].LessThan(cands[j]) })
	cands = slices.CompactFunc(cands, func(a, b *version.Version) bool { return a.Equal(b) })

	tags, err := p.inventory.Tags(ctx, mod.Repository)
	if err != nil {
		return fail(err)
	}
	tagged := make(map[string]bool, len(tags))
	for _, t := range tags {
		tagged[t] = true
	}
	for _, v := range cands {
		ver := v.Original()
		vp := ModuleVersionPlan{Version: ver, Tag: manifest.Tag(ver), State: StateMissing}
		if tagged[vp.Tag] {
			if err := p.compareModule(ctx, mod.Repository, &vp); err != nil {
				return fail(err)
			}
		}
		mp.Versions = append(mp.Versions, vp)
	}
	// A first run may find hundreds of missing versions: ask for their
	// locations a few at a time.
	width := make(chan struct{}, p.concurrency)
	var wg gosync.WaitGroup
	for i := range mp.Versions {
		vp := &mp.Versions[i]
		if vp.State != StateMissing {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			width <- struct{}{}
			defer func() { <-width }()
			p.locateModule(ctx, lister, mod, vp)
		}()
	}
	wg.Wait()
	for i := range mp.Versions {
		vp := &mp.Versions[i]
		vp.OCISource = ModuleOCISource(registry, mod.Repository, vp.Subdir, vp.Tag)
	}
	return mp
}

// compareModule reads the manifest behind an existing tag.
func (p *Planner) compareModule(ctx context.Context, repo string, vp *ModuleVersionPlan) error {
	raw, desc, err := p.inventory.Manifest(ctx, repo, vp.Tag)
	if errors.Is(err, errs.ErrNotFound) {
		return nil // listed but gone: missing
	}
	if err != nil {
		return err
	}
	if _, err := manifest.ModulePackageLayer(raw); err != nil {
		vp.State, vp.Detail = StateConflict, err.Error()
		return nil
	}
	info := manifest.ModulePackageInfoOf(raw)
	vp.State = StateComplete
	vp.Subdir, vp.Dependencies = info.Subdir, info.Dependencies
	vp.ExistingDigest = desc.Digest.String()
	return nil
}

// locateModule asks upstream where a missing version lives and checks the
// address is one the executor can fetch.
func (p *Planner) locateModule(ctx context.Context, lister ModuleLister, mod config.Module, vp *ModuleVersionPlan) {
	setErr := func(err error) {
		vp.Err = fmt.Errorf("module %s %s: %w", mod.Source, vp.Version, err)
		vp.ErrorMsg = vp.Err.Error()
	}
	loc, err := lister.ModuleLocation(ctx, mod.Source, vp.Version)
	if err != nil {
		setErr(err)
		return
	}
	vp.Location, vp.LocationDisplay = loc, modsource.Redact(loc)
	src, err := modsource.Parse(loc)
	if err != nil {
		setErr(err)
		return
	}
	vp.Subdir = src.Subdir
}

// checkModuleDependencies lists, per module, the registry modules its
// complete versions use that the plan does not mirror: one warning per
// dependency, naming the versions that use it.
func checkModuleDependencies(plan *Plan) {
	inPlan := modulesInPlan(plan)
	for mi := range plan.Modules {
		mp := &plan.Modules[mi]
		users := map[string][]string{} // dependency -> versions
		for vi := range mp.Versions {
			vp := &mp.Versions[vi]
			vp.MissingDependencies = missingDependencies(vp.Dependencies, inPlan)
			for _, d := range vp.MissingDependencies {
				users[d] = append(users[d], vp.Version)
			}
		}
		for _, d := range slices.Sorted(maps.Keys(users)) {
			mp.Warnings = append(mp.Warnings, dependencyWarning(strings.Join(users[d], ", "), d))
		}
	}
}

// dependencyWarning says that versions (one, or a comma-separated list)
// use dep, which the plan lacks.
func dependencyWarning(versions, dep string) string {
	verb := "uses"
	if strings.Contains(versions, ",") {
		verb = "use"
	}
	return fmt.Sprintf("%s %s registry module %s, which is not in the plan: add it to mirror it", versions, verb, dep)
}

// modulesInPlan is the set of the plan's module addresses, lower-cased:
// registries compare module addresses case-insensitively.
func modulesInPlan(plan *Plan) map[string]bool {
	in := make(map[string]bool, len(plan.Modules))
	for _, mp := range plan.Modules {
		in[strings.ToLower(mp.Address)] = true
	}
	return in
}

func missingDependencies(deps []string, inPlan map[string]bool) []string {
	var missing []string
	for _, d := range deps {
		if !inPlan[strings.ToLower(d)] {
			missing = append(missing, d)
		}
	}
	return missing
}

// executeModules adds the module items of plan: unchanged, conflicts and
// planning failures at once, missing versions on wg, each holding one
// slot of sem while it fetches, packs and uploads.
func (e *Executor) executeModules(ctx context.Context, plan *Plan, sem chan struct{}, wg *gosync.WaitGroup, add func(ItemResult)) {
	fetcher := e.modules
	if fetcher == nil {
		if hf, ok := e.fetcher.(modsource.HTTPFetcher); ok {
			fetcher = modsource.New(modsource.WithHTTPFetcher(hf), modsource.WithLogger(e.logger), modsource.WithTempDir(e.spoolDir))
		}
	}
	inPlan := modulesInPlan(plan)
	for mi := range plan.Modules {
		mp := &plan.Modules[mi]
		base := ItemResult{Kind: "module", Address: mp.Address, Repository: mp.Repository}
		if mp.Err != nil {
			it := base
			it.Action, it.State, it.Err = "plan", ItemFailed, mp.Err
			add(it)
			continue
		}
		for vi := range mp.Versions {
			vp := &mp.Versions[vi]
			it := base
			it.Version, it.Tag, it.Source = vp.Version, vp.Tag, vp.OCISource
			switch {
			case vp.State == StateComplete:
				it.Action, it.State, it.Digest = "none", ItemUnchanged, vp.ExistingDigest
				for _, d := range vp.MissingDependencies {
					it.Warnings = append(it.Warnings, dependencyWarning(vp.Version, d))
				}
				add(it)
			case vp.State == StateConflict:
				it.Action, it.State, it.Source = "skip", ItemConflict, ""
				it.Err = fmt.Errorf("module %s %s: %w at %s:%s: %s", mp.Address, vp.Version, ErrConflict, mp.Repository, vp.Tag, vp.Detail)
				add(it)
			case vp.Err != nil:
				it.Action, it.State, it.Source, it.Err = "create", ItemFailed, "", vp.Err
				add(it)
			case fetcher == nil:
				it.Action, it.State, it.Source = "create", ItemFailed, ""
				it.Err = fmt.Errorf("module %s %s: no module package fetcher configured", mp.Address, vp.Version)
				add(it)
			default:
				wg.Add(1)
				go func() {
					defer wg.Done()
					add(e.moduleVersion(ctx, sem, fetcher, mp, vp, inPlan, it))
				}()
			}
		}
	}
}

// moduleVersion fetches one module version, packs it into a deterministic
// zip and publishes it: empty config and zip blobs first, then the
// manifest under its tag.
func (e *Executor) moduleVersion(ctx context.Context, sem chan struct{}, fetcher ModuleSourceFetcher, mp *ModulePlan, vp *ModuleVersionPlan, inPlan map[string]bool, it ItemResult) ItemResult {
	start := time.Now()
	it.Action = "create"
	name := fmt.Sprintf("module %s %s", mp.Address, vp.Version)
	finish := func(err error) ItemResult {
		it.Duration = time.Since(start)
		if err != nil {
			it.State, it.Err, it.Source = ItemFailed, err, ""
		} else {
			it.State = ItemDone
		}
		return it
	}
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return finish(fmt.Errorf("%s: %w: %w", name, ErrInterrupted, ctx.Err()))
	}
	defer func() { <-sem }()
	if err := e.target.check(); err != nil {
		return finish(fmt.Errorf("%s: %w", name, err))
	}

	work, err := spoolWorkDir(e.spoolDir, "module")
	if err != nil {
		return finish(fmt.Errorf("%s: spool: %w", name, err))
	}
	defer func() { _ = os.RemoveAll(work) }()
	pkgDir := filepath.Join(work, "package")
	pkg, err := fetcher.Fetch(ctx, vp.Location, pkgDir)
	if pkg != nil {
		it.Downloaded = pkg.Downloaded
		if pkg.Downloaded > 0 {
			e.progress(Event{Bytes: pkg.Downloaded})
		}
	}
	if err != nil {
		return finish(fmt.Errorf("%s: %w", name, err))
	}

	deps, err := modsource.RegistryDependencies(pkgDir)
	if err != nil {
		it.Warnings = append(it.Warnings, err.Error())
	}
	depAddrs := modsource.SortedAddresses(deps)
	for _, d := range missingDependencies(depAddrs, inPlan) {
		it.Warnings = append(it.Warnings, dependencyWarning(vp.Version, d))
	}

	spool, err := SpoolFile(work)
	if err != nil {
		return finish(fmt.Errorf("%s: spool: %w", name, err))
	}
	defer spool.Close()
	zipInfo, err := manifest.WriteModuleZip(spool, pkgDir)
	if err != nil {
		return finish(fmt.Errorf("%s: packing %s: %w", name, modsource.Redact(vp.Location), err))
	}
	if err := e.ensureBlob(ctx, mp.Repository, manifest.EmptyConfig(), descriptor.EmptyData); err != nil {
		return finish(fmt.Errorf("%s: %w", name, err))
	}
	zipDesc := zipInfo.Descriptor
	if _, exists, err := e.target.BlobExists(ctx, mp.Repository, zipDesc); err != nil {
		return finish(fmt.Errorf("%s: %w", name, err))
	} else if !exists {
		if _, err := spool.Seek(0, io.SeekStart); err != nil {
			return finish(fmt.Errorf("%s: spool: %w", name, err))
		}
		if err := e.target.PutBlob(ctx, mp.Repository, zipDesc, spool); err != nil {
			return finish(fmt.Errorf("%s: %w", name, err))
		}
		it.Uploaded += zipDesc.Size
	}
	art, err := manifest.ModulePackageAnnotated(zipDesc, manifest.ModulePackageInfo{Subdir: pkg.Subdir, Dependencies: depAddrs})
	if err != nil {
		return finish(fmt.Errorf("%s: %w", name, err))
	}
	if err := e.target.PutManifest(ctx, mp.Repository, art, vp.Tag); err != nil {
		return finish(fmt.Errorf("%s: %w", name, err))
	}
	it.Uploaded += art.Descriptor.Size
	it.Digest = art.Descriptor.Digest.String()
	// The fetched tree decides the subdir: a glob in the location resolves here.
	it.Source = ModuleOCISource(mp.Registry, mp.Repository, pkg.Subdir, vp.Tag)
	e.logger.Info("published", "module", mp.Address, "version", vp.Version, "tag", vp.Tag, "digest", it.Digest, "files", zipInfo.Files, "source", it.Source)
	return finish(nil)
}
