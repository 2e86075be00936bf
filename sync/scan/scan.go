// Package scan reads OpenTofu configurations without running OpenTofu: the
// provider requirements (required_providers) of a root module and its
// local modules, every registry module call with its version constraint,
// and the provider versions pinned in .terraform.lock.hcl files. It parses
// with github.com/hashicorp/hcl/v2, as OpenTofu does; a file that does not
// parse is a [Problem] naming the file and line, and the scan goes on.
package scan

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/lockfile"
)

// ProviderRequirement is one entry of a required_providers block.
type ProviderRequirement struct {
	// Address is the normalised "hostname/namespace/type"; an entry without
	// a source means hashicorp/<local name>, as OpenTofu reads it.
	Address string
	// Constraints is the "version" argument as written; "" when none.
	Constraints string
	// Dir is the module directory; File and Line locate the entry.
	Dir, File string
	Line      int
}

// ModuleCall is a module block whose source is a module registry address.
type ModuleCall struct {
	// Source is the registry address as written, without a //subdirectory.
	Source string
	// Addr is Source parsed.
	Addr config.ModuleAddr
	// Version is the "version" argument as written; "" when none.
	Version string
	// File and Line locate the module block.
	File string
	Line int
}

// LockedProvider is one provider block of a lock file.
type LockedProvider struct {
	lockfile.Provider
	// Dir is the directory holding the lock file; File is its path.
	Dir, File string
}

// Problem is a file that could not be read or an entry that makes no
// sense; Line is 0 when unknown.
type Problem struct {
	File    string
	Line    int
	Message string
}

// String renders the problem as "file:line: message".
func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Message)
	}
	return p.File + ": " + p.Message
}

// Findings is what a scan collected, each list in the order found
// (directories sorted, files sorted). Empty lists are nil.
type Findings struct {
	// Providers are the required_providers entries and implied providers.
	Providers []ProviderRequirement
	// Modules are the registry module calls; Locked the lock file blocks;
	// Problems the files and entries that could not be read.
	Modules  []ModuleCall
	Locked   []LockedProvider
	Problems []Problem

	// calls maps each module directory read (one with configuration
	// files) to the local module directories it calls.
	calls map[string][]string
	// rootDir is the root module of a Configuration; "" after Walk.
	rootDir string
}

// Roots returns the root modules found: module directories no other
// module read calls, sorted. A Configuration has exactly its directory.
func (f *Findings) Roots() []string {
	if f.rootDir != "" {
		return []string{f.rootDir}
	}
	called := map[string]bool{}
	for _, locals := range f.calls {
		for _, l := range locals {
			called[l] = true
		}
	}
	var roots []string
	for d := range f.calls {
		if !called[d] {
			roots = append(roots, d)
		}
	}
	sort.Strings(roots)
	return roots
}

// modulesOf returns root and every local module it calls, transitively.
func (f *Findings) modulesOf(root string) map[string]bool {
	seen := map[string]bool{}
	queue := []string{root}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		if seen[d] {
			continue
		}
		seen[d] = true
		queue = append(queue, f.calls[d]...)
	}
	return seen
}

// RootRequirements merges, per provider, the requirements of root and its
// local modules: the constraint set OpenTofu applies to that configuration.
func (f *Findings) RootRequirements(root string) (map[string]lockfile.Constraints, error) {
	in := f.modulesOf(root)
	out := map[string]lockfile.Constraints{}
	for _, r := range f.Providers {
		if !in[r.Dir] {
			continue
		}
		c := out[r.Address]
		if r.Constraints != "" {
			more, err := lockfile.ParseConstraints(r.Constraints)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", r.File, r.Line, err)
			}
			c = append(c, more...)
		}
		out[r.Address] = c
	}
	return out, nil
}

// Configuration reads the root module in dir and, recursively, the local
// modules it calls ("./" and "../" sources), as `tofu init` would load
// them; lock files are not read. Modules `tofu init` already installed
// (listed in .terraform/modules/modules.json) are read too, as OpenTofu
// reads them; others are not fetched.
func Configuration(dir string) *Findings {
	f := &Findings{calls: map[string][]string{}, rootDir: filepath.Clean(dir)}
	installed := f.installedModules(dir)
	f.readAll(append([]string{f.rootDir}, installed...), false)
	f.calls[f.rootDir] = append(f.calls[f.rootDir], installed...)
	return f
}

// installedModules lists the directories of the modules `tofu init`
// recorded in dir/.terraform/modules/modules.json; none when it is absent.
func (f *Findings) installedModules(dir string) []string {
	path := filepath.Join(dir, ".terraform", "modules", "modules.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var manifest struct {
		Modules []struct{ Dir string }
	}
	if err := json.Unmarshal(data, &manifest); err != nil {
		f.Problems = append(f.Problems, Problem{File: path, Message: err.Error()})
		return nil
	}
	var out []string
	for _, m := range manifest.Modules {
		if m.Dir != "" && !filepath.IsAbs(m.Dir) {
			out = append(out, filepath.Join(dir, filepath.FromSlash(m.Dir)))
		}
	}
	return out
}

// Walk reads every module directory under dirs (recursively, skipping
// .terraform and .git directories), the local modules they call wherever
// those are, and every .terraform.lock.hcl found.
func Walk(dirs ...string) *Findings {
	f := &Findings{calls: map[string][]string{}}
	var queue []string
	for _, root := range dirs {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				f.Problems = append(f.Problems, Problem{File: p, Message: err.Error()})
				return nil
			}
			if d.IsDir() {
				if p != root && (d.Name() == ".terraform" || d.Name() == ".git") {
					return filepath.SkipDir
				}
				queue = append(queue, filepath.Clean(p))
			}
			return nil
		})
		if err != nil {
			f.Problems = append(f.Problems, Problem{File: root, Message: err.Error()})
		}
	}
	f.readAll(queue, true)
	return f
}

// readAll reads each module directory in queue once, and the local modules
// they call; withLocks also reads each directory's lock file.
func (f *Findings) readAll(queue []string, withLocks bool) {
	seen := map[string]bool{}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		if seen[d] {
			continue
		}
		seen[d] = true
		queue = append(queue, f.readModule(d)...)
		if withLocks {
			f.readLock(d)
		}
	}
}

func (f *Findings) readLock(dir string) {
	path := filepath.Join(dir, lockfile.FileName)
	if _, err := os.Stat(path); err != nil {
		return
	}
	lf, err := lockfile.Read(path)
	if err != nil {
		f.Problems = append(f.Problems, Problem{File: path, Message: err.Error()})
	}
	if lf == nil {
		return
	}
	keys := make([]string, 0, len(lf.Providers))
	for k := range lf.Providers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f.Locked = append(f.Locked, LockedProvider{Provider: *lf.Providers[k], Dir: dir, File: path})
	}
}

// configFiles lists a directory's configuration files as OpenTofu loads
// them: *.tf, *.tofu and their .json forms, where x.tofu hides x.tf.
func configFiles(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for _, e := range ents {
		if !e.IsDir() {
			names[e.Name()] = true
		}
	}
	var out []string
	for n := range names {
		switch {
		case strings.HasPrefix(n, ".") || strings.HasSuffix(n, "~") || strings.HasPrefix(n, "#"):
		case strings.HasSuffix(n, ".tf"):
			if !names[strings.TrimSuffix(n, ".tf")+".tofu"] {
				out = append(out, n)
			}
		case strings.HasSuffix(n, ".tf.json"):
			if !names[strings.TrimSuffix(n, ".tf.json")+".tofu.json"] {
				out = append(out, n)
			}
		case strings.HasSuffix(n, ".tofu"), strings.HasSuffix(n, ".tofu.json"):
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

// readModule parses one module directory and returns the directories of
// the local modules it calls.
func (f *Findings) readModule(dir string) []string {
	files, err := configFiles(dir)
	if err != nil {
		f.Problems = append(f.Problems, Problem{File: dir, Message: err.Error()})
		return nil
	}
	if len(files) == 0 {
		return nil
	}
	parser := hclparse.NewParser()
	var local []string
	m := &moduleState{declared: map[string]bool{}, used: map[string]hcl.Range{}, usedIn: map[string]string{}}
	for _, name := range files {
		path := filepath.Join(dir, name)
		var file *hcl.File
		var diags hcl.Diagnostics
		if strings.HasSuffix(name, ".json") {
			file, diags = parser.ParseJSONFile(path)
		} else {
			file, diags = parser.ParseHCLFile(path)
		}
		f.diagnostics(path, diags)
		if file == nil || diags.HasErrors() {
			continue
		}
		local = append(local, f.readFile(m, dir, path, file.Body)...)
	}
	f.implied(m, dir)
	for i, l := range local {
		local[i] = filepath.Clean(l)
	}
	f.calls[dir] = local
	return local
}

// moduleState is what one module's files declare and use.
type moduleState struct {
	// declared are the local names in required_providers.
	declared map[string]bool
	// used are local names resources, data sources and provider blocks
	// refer to, with where they were first used.
	used   map[string]hcl.Range
	usedIn map[string]string
}

// implied adds, as OpenTofu infers them, a requirement without constraint
// on hashicorp/NAME for each local name used but not declared ("aws" for
// resource "aws_instance"); "terraform" is built in.
func (f *Findings) implied(m *moduleState, dir string) {
	names := make([]string, 0, len(m.used))
	for n := range m.used {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if m.declared[n] || n == "terraform" {
			continue
		}
		addr, err := config.ParseProviderAddr("hashicorp/" + n)
		if err != nil {
			f.problem(m.usedIn[n], m.used[n], "provider local name %q: %v", n, err)
			continue
		}
		f.Providers = append(f.Providers, ProviderRequirement{Address: addr.String(), Dir: dir, File: m.usedIn[n], Line: m.used[n].Start.Line})
	}
}

// use records a local provider name used at r.
func (m *moduleState) use(name, path string, r hcl.Range) {
	if _, ok := m.used[name]; !ok && name != "" {
		m.used[name], m.usedIn[name] = r, path
	}
}

// diagnostics records HCL errors as problems at their line.
func (f *Findings) diagnostics(path string, diags hcl.Diagnostics) {
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		p := Problem{File: path, Message: d.Summary}
		if d.Detail != "" {
			p.Message += ": " + d.Detail
		}
		if d.Subject != nil {
			p.Line = d.Subject.Start.Line
		}
		f.Problems = append(f.Problems, p)
	}
}

func (f *Findings) problem(path string, r hcl.Range, format string, args ...any) {
	f.Problems = append(f.Problems, Problem{File: path, Line: r.Start.Line, Message: fmt.Sprintf(format, args...)})
}

var fileSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
	{Type: "terraform"},
	{Type: "module", LabelNames: []string{"name"}},
	{Type: "provider", LabelNames: []string{"name"}},
	{Type: "resource", LabelNames: []string{"type", "name"}},
	{Type: "data", LabelNames: []string{"type", "name"}},
	{Type: "ephemeral", LabelNames: []string{"type", "name"}},
}}

// readFile collects one file's requirements and module calls.
func (f *Findings) readFile(m *moduleState, dir, path string, body hcl.Body) []string {
	content, _, diags := body.PartialContent(fileSchema)
	f.diagnostics(path, diags)
	var local []string
	for _, b := range content.Blocks {
		switch b.Type {
		case "terraform":
			f.readTerraform(m, dir, path, b.Body)
		case "provider":
			m.use(b.Labels[0], path, b.DefRange)
		case "resource", "data", "ephemeral":
			m.use(resourceProvider(b), path, b.DefRange)
		case "module":
			if d := f.readModuleCall(dir, path, b); d != "" {
				local = append(local, d)
			}
		}
	}
	return local
}

// resourceProvider is the local provider name a resource uses: the root of
// its provider argument, else its type up to the first "_".
func resourceProvider(b *hcl.Block) string {
	content, _, _ := b.Body.PartialContent(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "provider"}}})
	if a := content.Attributes["provider"]; a != nil {
		if tr, diags := hcl.AbsTraversalForExpr(a.Expr); !diags.HasErrors() {
			return tr.RootName()
		}
	}
	name, _, _ := strings.Cut(b.Labels[0], "_")
	return name
}

func (f *Findings) readTerraform(m *moduleState, dir, path string, body hcl.Body) {
	content, _, diags := body.PartialContent(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "required_providers"}}})
	f.diagnostics(path, diags)
	for _, rp := range content.Blocks {
		attrs, diags := rp.Body.JustAttributes()
		f.diagnostics(path, diags)
		names := make([]string, 0, len(attrs))
		for n := range attrs {
			names = append(names, n)
		}
		sort.Slice(names, func(i, j int) bool { return attrs[names[i]].Range.Start.Line < attrs[names[j]].Range.Start.Line })
		for _, n := range names {
			m.declared[n] = true
			f.readRequirement(dir, path, n, attrs[n])
		}
	}
}

// readRequirement reads `name = { source = "...", version = "..." }` or the
// legacy `name = "constraint"`. Other keys (configuration_aliases) are
// references, never evaluated.
func (f *Findings) readRequirement(dir, path, name string, a *hcl.Attribute) {
	req := ProviderRequirement{Dir: dir, File: path, Line: a.Range.Start.Line}
	source := ""
	if pairs, diags := hcl.ExprMap(a.Expr); !diags.HasErrors() {
		for _, kv := range pairs {
			key := hcl.ExprAsKeyword(kv.Key)
			if key == "" {
				if v, d := kv.Key.Value(nil); !d.HasErrors() && v.Type() == cty.String && v.IsKnown() && !v.IsNull() {
					key = v.AsString()
				}
			}
			if key != "source" && key != "version" {
				continue
			}
			s, ok := stringValue(kv.Value)
			if !ok {
				f.problem(path, kv.Value.Range(), "required_providers %s: %s must be a literal string", name, key)
				return
			}
			if key == "source" {
				source = s
			} else {
				req.Constraints = s
			}
		}
	} else if s, ok := stringValue(a.Expr); ok {
		req.Constraints = s
	} else {
		f.problem(path, a.Range, "required_providers %s: want { source = \"...\", version = \"...\" }", name)
		return
	}
	if source == "" {
		source = "hashicorp/" + name
	}
	addr, err := config.ParseProviderAddr(source)
	if err != nil {
		f.problem(path, a.Range, "required_providers %s: %v", name, err)
		return
	}
	if addr.Hostname == "terraform.io" && addr.Namespace == "builtin" {
		return // built into OpenTofu, never installed or locked
	}
	if req.Constraints != "" {
		if _, err := lockfile.ParseConstraints(req.Constraints); err != nil {
			f.problem(path, a.Range, "required_providers %s: %v", name, err)
			return
		}
	}
	req.Address = addr.String()
	f.Providers = append(f.Providers, req)
}

func stringValue(e hcl.Expression) (string, bool) {
	v, diags := e.Value(nil)
	if diags.HasErrors() || !v.IsKnown() || v.IsNull() || v.Type() != cty.String {
		return "", false
	}
	return v.AsString(), true
}

// readModuleCall records a registry module call and returns the directory
// of a local one ("" otherwise).
func (f *Findings) readModuleCall(dir, path string, b *hcl.Block) string {
	content, _, diags := b.Body.PartialContent(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "source"}, {Name: "version"}}})
	f.diagnostics(path, diags)
	sa := content.Attributes["source"]
	if sa == nil {
		f.problem(path, b.DefRange, "module %q has no source", b.Labels[0])
		return ""
	}
	source, ok := stringValue(sa.Expr)
	if !ok {
		f.problem(path, sa.Range, "module %q: source must be a literal string", b.Labels[0])
		return ""
	}
	if strings.HasPrefix(source, "./") || strings.HasPrefix(source, "../") {
		return filepath.Join(dir, filepath.FromSlash(source))
	}
	addr, pkg, ok := registrySource(source)
	if !ok {
		return "" // git, http, s3, oci:// and the like: no registry version to mirror
	}
	call := ModuleCall{Source: pkg, Addr: addr, File: path, Line: b.DefRange.Start.Line}
	if va := content.Attributes["version"]; va != nil {
		if call.Version, ok = stringValue(va.Expr); !ok {
			f.problem(path, va.Range, "module %q: version must be a literal string", b.Labels[0])
			return ""
		}
	}
	f.Modules = append(f.Modules, call)
	return ""
}

// registrySource reports whether a module source is a module registry
// address, as OpenTofu tells them from go-getter sources: no "::" forced
// getter, no URL scheme, and three or four parts (an optional hostname),
// a //subdirectory allowed after them. github.com and bitbucket.org are
// go-getter shorthands, never registries.
func registrySource(s string) (config.ModuleAddr, string, bool) {
	if strings.Contains(s, "::") || strings.Contains(s, "://") {
		return config.ModuleAddr{}, "", false
	}
	pkg, _, _ := strings.Cut(s, "//")
	addr, err := config.ParseModuleAddr(pkg)
	if err != nil {
		return config.ModuleAddr{}, "", false
	}
	switch addr.Hostname {
	case "github.com", "bitbucket.org":
		return config.ModuleAddr{}, "", false
	}
	return addr, pkg, true
}

// Requirements merges the provider requirements of a Configuration into
// the constraint set OpenTofu locks for each provider: every module's
// terms together.
func (f *Findings) Requirements() (map[string]lockfile.Constraints, error) {
	return f.RootRequirements(f.rootDir)
}
