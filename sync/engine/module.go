package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/go-version"
	"github.com/regclient/regclient/types/errs"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/copygraph"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/modsource"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/sched"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/spool"
)

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
	// unknown. Its message is the JSON "error".
	Err error `json:"-"`
}

// MarshalJSON writes the plan with Err's message as "error".
func (mp ModulePlan) MarshalJSON() ([]byte, error) {
	type plain ModulePlan
	return json.Marshal(struct {
		plain
		Error string `json:"error,omitempty"`
	}{plain(mp), item.ErrorText(mp.Err)})
}

// ModuleVersionPlan is the state of one upstream module version in the
// target.
type ModuleVersionPlan struct {
	Version string     `json:"version"`
	Tag     string     `json:"tag"`
	State   item.State `json:"state"`
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
	// RewrittenDependencies are, for a complete version mirrored with
	// module_dependencies: rewrite, the oci:// sources its registry module
	// blocks were rewritten to (the dependencies it added).
	RewrittenDependencies []string `json:"rewritten_dependencies,omitempty"`
	// Detail explains a conflict.
	Detail         string `json:"detail,omitempty"`
	ExistingDigest string `json:"existing_digest,omitempty"`
	// Err is why a missing version cannot be mirrored (no location, an
	// unsupported source type); the executor reports it as a failure. Its
	// message is the JSON "error".
	Err error `json:"-"`
}

// MarshalJSON writes the plan with Err's message as "error".
func (vp ModuleVersionPlan) MarshalJSON() ([]byte, error) {
	type plain ModuleVersionPlan
	return json.Marshal(struct {
		plain
		Error string `json:"error,omitempty"`
	}{plain(vp), item.ErrorText(vp.Err)})
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

// modules is the module [kind]. Planning one module costs one versions
// call, the tag-list pages, one manifest read per matching version already
// tagged, and one download-endpoint call per missing version (to show its
// //subdir and refuse unsupported sources before any transfer): never a
// package download or a git operation. Copying a version fetches its
// package (git or archive), packs a deterministic zip and pushes it with
// its manifest and tag.
type modules struct{}

func (modules) plan(e *Engine, cfg *config.Config, p *Plan) ([]func(context.Context), func()) {
	p.Modules = make([]ModulePlan, len(cfg.Modules))
	registry := sourceRegistry(cfg.Target)
	tasks := make([]func(context.Context), len(cfg.Modules))
	for i, mod := range cfg.Modules {
		tasks[i] = func(ctx context.Context) { p.Modules[i] = planModule(ctx, e, registry, mod) }
	}
	return tasks, func() {
		checkModuleDependencies(p)
		attachModuleDependencies(cfg, p)
	}
}

func (modules) entries(p *Plan) []entry {
	out := make([]entry, 0, len(p.Modules))
	for i := range p.Modules {
		mp := &p.Modules[i]
		en := entry{kind: item.Module, address: mp.Address, repository: mp.Repository, err: mp.Err}
		for j := range mp.Versions {
			vp := &mp.Versions[j]
			v := versionView{version: vp.Version, tag: vp.Tag, state: vp.State, digest: vp.ExistingDigest, detail: vp.Detail, err: vp.Err}
			switch {
			case vp.State == item.Complete:
				v.source = vp.OCISource
				for _, d := range vp.MissingDependencies {
					v.warnings = append(v.warnings, dependencyWarning(vp.Version, d))
				}
			case vp.State.Pending():
				v.copy = func(ctx context.Context, r *run, it item.Result) item.Result { return r.moduleVersion(ctx, mp, vp, it) }
			}
			en.versions = append(en.versions, v)
		}
		out = append(out, en)
	}
	return out
}

func planModule(ctx context.Context, e *Engine, registry string, mod config.Module) ModulePlan {
	mp := ModulePlan{Source: mod.Source, Address: mod.Source.String(), Repository: mod.Repository, Registry: registry, Versions: []ModuleVersionPlan{}}
	fail := func(err error) ModulePlan {
		mp.Err = named("module "+mp.Address, err)
		return mp
	}
	upVersions, err := e.up.ModuleVersions(ctx, mod.Source)
	if err != nil {
		return fail(err)
	}
	var all []*version.Version
	for _, s := range upVersions {
		v, ok := manifest.ParseStrictVersion(s)
		if !ok {
			mp.Warnings = append(mp.Warnings, fmt.Sprintf("upstream version %q is not a valid version: ignored", s))
			continue
		}
		all = append(all, v)
	}
	cands := mod.Selection().Select(all)
	if len(cands) == 0 {
		mp.Warnings = append(mp.Warnings, fmt.Sprintf("no upstream version matches %q", mod.Versions))
		return mp
	}

	tags, err := e.inventory.Tags(ctx, mod.Repository)
	if err != nil {
		return fail(err)
	}
	tagged := make(map[string]bool, len(tags))
	for _, t := range tags {
		tagged[t] = true
	}
	for _, v := range cands {
		ver := v.Original()
		vp := ModuleVersionPlan{Version: ver, Tag: manifest.Tag(ver), State: item.Missing}
		if tagged[vp.Tag] {
			if err := compareModuleTag(ctx, e, mod.Repository, &vp); err != nil {
				return fail(err)
			}
		}
		mp.Versions = append(mp.Versions, vp)
	}
	// A first run may find hundreds of missing versions: ask for their
	// locations a few at a time.
	var missing []*ModuleVersionPlan
	for i := range mp.Versions {
		if mp.Versions[i].State == item.Missing {
			missing = append(missing, &mp.Versions[i])
		}
	}
	sched.Each(len(missing), e.metadata, func(i int) { locateModule(ctx, e, mod, missing[i]) })
	for i := range mp.Versions {
		vp := &mp.Versions[i]
		vp.OCISource = ModuleOCISource(registry, mod.Repository, vp.Subdir, vp.Tag)
	}
	return mp
}

// compareModuleTag reads the manifest behind an existing tag.
func compareModuleTag(ctx context.Context, e *Engine, repo string, vp *ModuleVersionPlan) error {
	raw, desc, err := e.inventory.Manifest(ctx, repo, vp.Tag)
	if errors.Is(err, errs.ErrNotFound) {
		return nil // listed but gone: missing
	}
	if err != nil {
		return err
	}
	if detail := CompareModulePackage(raw); detail != "" {
		vp.State, vp.Detail = item.Conflict, detail
		return nil
	}
	info := manifest.ModulePackageInfoOf(raw)
	vp.State = item.Complete
	vp.Subdir, vp.Dependencies, vp.RewrittenDependencies = info.Subdir, info.Dependencies, info.Rewritten
	vp.ExistingDigest = desc.Digest.String()
	return nil
}

// CompareModulePackage says why the manifest raw at a module version tag
// is not a module package OpenTofu installs, or "" when it is one. A
// module version is never replaced, so anything else is a conflict.
func CompareModulePackage(raw []byte) string {
	if _, err := manifest.ModulePackageLayer(raw); err != nil {
		return err.Error()
	}
	return ""
}

// locateModule asks upstream where a missing version lives and checks the
// address is one the executor can fetch.
func locateModule(ctx context.Context, e *Engine, mod config.Module, vp *ModuleVersionPlan) {
	setErr := func(err error) { vp.Err = fmt.Errorf("module %s %s: %w", mod.Source, vp.Version, err) }
	loc, err := e.up.ModuleLocation(ctx, mod.Source, vp.Version)
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

// moduleVersion fetches one module version, packs it into a deterministic
// zip and publishes it: empty config and zip blobs first, then the
// manifest under its tag. It holds one transfer slot throughout.
func (r *run) moduleVersion(ctx context.Context, mp *ModulePlan, vp *ModuleVersionPlan, it item.Result) item.Result {
	name := fmt.Sprintf("module %s %s", mp.Address, vp.Version)
	if call := r.deps.plannedCall(mp.Repository, vp); call != nil {
		return r.planned(ctx, call, name, it)
	}
	release, err := r.slot(ctx, name)
	if err != nil {
		it.Fail(err)
		return it
	}
	defer release()
	return r.publishModuleVersion(ctx, mp, vp, it, []string{mp.Address})
}

// publishModuleVersion does moduleVersion's work without taking a slot:
// dependencies mirrored for a package run inside its slot (taking another
// could deadlock once every slot waits for a dependency). With
// module_dependencies: rewrite the package's registry module blocks are
// rewritten to oci:// copies first; chain names the modules calling it.
func (r *run) publishModuleVersion(ctx context.Context, mp *ModulePlan, vp *ModuleVersionPlan, it item.Result, chain []string) item.Result {
	it.Source = vp.OCISource
	name := fmt.Sprintf("module %s %s", mp.Address, vp.Version)
	fail := func(err error) item.Result {
		it.Fail(err)
		it.Source = ""
		return it
	}
	if err := r.target.Check(); err != nil {
		return fail(fmt.Errorf("%s: %w", name, err))
	}

	work, err := spool.WorkDir(r.e.spoolDir, "module")
	if err != nil {
		return fail(fmt.Errorf("%s: spool: %w", name, err))
	}
	defer func() { _ = os.RemoveAll(work) }()
	pkgDir := filepath.Join(work, "package")
	pkg, err := r.e.modules.Fetch(ctx, vp.Location, pkgDir)
	if pkg != nil {
		it.Downloaded = pkg.Downloaded
		if pkg.Downloaded > 0 {
			r.e.progress(item.Event{Bytes: pkg.Downloaded})
		}
	}
	if err != nil {
		return fail(fmt.Errorf("%s: %w", name, err))
	}

	var rewritten []string
	if r.deps != nil {
		var warnings []string
		if warnings, rewritten, err = r.rewriteDependencies(ctx, pkgDir, chain); err != nil {
			return fail(fmt.Errorf("%s: %w", name, err))
		}
		it.Warnings = append(it.Warnings, warnings...)
	}
	found, err := modsource.RegistryDependencies(pkgDir)
	if err != nil {
		it.Warnings = append(it.Warnings, err.Error())
	}
	depAddrs := modsource.SortedAddresses(found)
	for _, d := range missingDependencies(depAddrs, r.inPlan) {
		it.Warnings = append(it.Warnings, dependencyWarning(vp.Version, d))
	}

	zipFile, err := spool.File(work)
	if err != nil {
		return fail(fmt.Errorf("%s: spool: %w", name, err))
	}
	defer zipFile.Close()
	zipInfo, err := manifest.WriteModuleZip(zipFile, pkgDir)
	if err != nil {
		return fail(fmt.Errorf("%s: packing %s: %w", name, modsource.Redact(vp.Location), err))
	}
	if err := r.ensureEmptyConfig(ctx, mp.Repository); err != nil {
		return fail(fmt.Errorf("%s: %w", name, err))
	}
	n, err := r.copier.Blob(ctx, mp.Repository, zipInfo.Descriptor, copygraph.File(zipFile, zipInfo.Descriptor.Size), false)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", name, err))
	}
	it.Uploaded += n
	art, err := manifest.ModulePackageAnnotated(zipInfo.Descriptor, manifest.ModulePackageInfo{Subdir: pkg.Subdir, Dependencies: depAddrs, Rewritten: rewritten})
	if err != nil {
		return fail(fmt.Errorf("%s: %w", name, err))
	}
	if err := r.copier.Tag(ctx, mp.Repository, art, vp.Tag); err != nil {
		return fail(fmt.Errorf("%s: %w", name, err))
	}
	it.Uploaded += art.Descriptor.Size
	it.Digest = art.Descriptor.Digest.String()
	// The fetched tree decides the subdir: a glob in the location resolves here.
	it.Source = ModuleOCISource(mp.Registry, mp.Repository, pkg.Subdir, vp.Tag)
	r.e.logger.Info("published", "module", mp.Address, "version", vp.Version, "tag", vp.Tag, "digest", it.Digest, "files", zipInfo.Files, "source", it.Source)
	return it
}
