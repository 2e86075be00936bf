package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load reads and parses the plan file at path. A file that cannot be read is
// reported as that os error; a file with mistakes as a *LoadError listing
// all of them.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading plan: %w", err)
	}
	return Parse(path, data)
}

// Parse parses plan data. path names the file in problems and anchors
// relative paths (ca_file, oci-layout:PATH); "" means the working directory.
// The error, if any, is a *LoadError matching ErrInvalidPlan.
func Parse(path string, data []byte) (*Config, error) {
	w := &walker{file: path}
	if path != "" {
		w.baseDir = filepath.Dir(path)
	}
	var cfg *Config
	if root := w.decode(data); root != nil {
		cfg = w.plan(root)
	}
	if len(w.problems) > 0 {
		slices.SortStableFunc(w.problems, func(a, b Problem) int {
			return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
		})
		return nil, &LoadError{Problems: w.problems}
	}
	cfg.Path = path
	return cfg, nil
}

// yamlLineRe pulls the line out of yaml.v3 syntax errors.
var yamlLineRe = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// decode parses data into the root node of its single document; nil after
// recording a problem when there is nothing usable.
func (w *walker) decode(data []byte) (root *yaml.Node) {
	defer func() {
		// yaml.v3 has panicked on hostile input before; a plan file must
		// never crash the program.
		if r := recover(); r != nil {
			w.problemf(nil, "YAML parser failed: %v", r)
			root = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			w.problemf(nil, "plan file is empty; it needs at least \"version: 1\"")
		} else {
			w.syntaxError(err)
		}
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		w.syntaxError(err)
	default:
		at := &extra
		if len(extra.Content) > 0 {
			at = extra.Content[0]
		}
		w.problemf(at, "a plan is a single YAML document; remove the \"---\" and what follows")
	}
	root = &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	if isNull(root) {
		w.problemf(nil, "plan file is empty; it needs at least \"version: 1\"")
		return nil
	}
	return resolve(root)
}

func (w *walker) syntaxError(err error) {
	if m := yamlLineRe.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		w.problems = append(w.problems, Problem{File: w.file, Line: line, Message: "YAML syntax error: " + m[2]})
		return
	}
	w.problemf(nil, "YAML syntax error: %s", strings.TrimPrefix(err.Error(), "yaml: "))
}

// plan reads the top-level mapping.
func (w *walker) plan(root *yaml.Node) *Config {
	top := w.mapping(root, "the plan", "version", "target", "upstream", "platforms", "providers", "modules", "module_dependencies", "trust")
	if top == nil {
		return nil
	}
	cfg := &Config{}
	if f, ok := top["version"]; !ok || isNull(f.value) {
		w.problemf(root, "missing required key \"version\"; add \"version: 1\"")
	} else {
		cfg.Version = w.version(f.value)
	}
	var tmpl templates
	cfg.Target, tmpl = w.target(top["target"].value)
	cfg.Upstream = w.upstream(top["upstream"].value)
	cfg.Trust = w.trust(top["trust"].value)
	defaults, defaultsState := w.platforms(top["platforms"].value, "platforms")
	cfg.Platforms = defaults
	providers := w.providers(top["providers"].value, defaults, defaultsState)
	modules := w.modules(top["modules"].value)
	cfg.ModuleDependencies = w.moduleDependencies(top["module_dependencies"].value)
	w.repositories(tmpl, providers, modules)
	for _, p := range providers {
		cfg.Providers = append(cfg.Providers, p.Provider)
	}
	for _, m := range modules {
		cfg.Modules = append(cfg.Modules, m.Module)
	}
	return cfg
}

// moduleDependencies reads module_dependencies: warn (the default) or
// rewrite.
func (w *walker) moduleDependencies(n *yaml.Node) ModuleDependencies {
	s, ok := w.str(n, "module_dependencies")
	if !ok || s == "" {
		return ModuleDependenciesWarn
	}
	switch d := ModuleDependencies(s); d {
	case ModuleDependenciesWarn, ModuleDependenciesRewrite:
		return d
	}
	w.problemf(n, "module_dependencies must be %q or %q, not %q", ModuleDependenciesWarn, ModuleDependenciesRewrite, s)
	return ModuleDependenciesWarn
}

func (w *walker) version(n *yaml.Node) int {
	var v int
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&v) != nil {
		w.problemf(n, "version must be the number 1, not %s", describe(n))
		return 0
	}
	if v != 1 {
		w.problemf(n, "unsupported plan version %d; this program reads version 1", v)
	}
	return v
}

// templates are the repository templates and whether they passed the
// one-time check; entries are rendered only with good templates, so one bad
// template yields one problem, not one per entry.
type templates struct {
	providers, modules     string
	providersOK, modulesOK bool
}

func (w *walker) target(n *yaml.Node) (Target, templates) {
	t := Target{
		Registry:            DefaultRegistry,
		ProvidersRepository: DefaultProvidersRepository,
		ModulesRepository:   DefaultModulesRepository,
		Provenance:          ProvenanceAuto,
		baseDir:             w.baseDir,
	}
	tmpl := templates{providersOK: true, modulesOK: true}
	if !isNull(n) {
		m := w.mapping(n, "target", "registry", "insecure", "ca_file", "providers_repository", "modules_repository", "provenance")
		if f := m["provenance"]; f.value != nil {
			if s, ok := w.str(f.value, "target.provenance"); ok && s != "" {
				if slices.Contains(ProvenanceModes, ProvenanceMode(s)) {
					t.Provenance = ProvenanceMode(s)
				} else {
					w.problemf(f.value, "target.provenance is %q; want one of auto, referrers, tag, off", s)
				}
			}
		}
		if f := m["registry"]; f.value != nil {
			if s, ok := w.str(f.value, "target.registry"); ok && s != "" {
				w.registry(f.value, s)
				t.Registry = s
			}
		}
		t.Insecure, _ = w.boolean(m["insecure"].value, "target.insecure")
		if s, ok := w.str(m["ca_file"].value, "target.ca_file"); ok {
			t.CAFile = resolvePath(w.baseDir, s)
		}
		if f := m["providers_repository"]; f.value != nil {
			if s, ok := w.str(f.value, "target.providers_repository"); ok && s != "" {
				t.ProvidersRepository = s
				if _, err := RenderProviderRepository(s, sampleProvider); err != nil {
					w.problemf(f.value, "target.providers_repository: %v", err)
					tmpl.providersOK = false
				}
			}
		}
		if f := m["modules_repository"]; f.value != nil {
			if s, ok := w.str(f.value, "target.modules_repository"); ok && s != "" {
				t.ModulesRepository = s
				if _, err := RenderModuleRepository(s, sampleModule); err != nil {
					w.problemf(f.value, "target.modules_repository: %v", err)
					tmpl.modulesOK = false
				}
			}
		}
	}
	tmpl.providers, tmpl.modules = t.ProvidersRepository, t.ModulesRepository
	return t, tmpl
}

// Typical addresses used to check a template once, before rendering it per
// entry.
var (
	sampleProvider = ProviderAddr{Hostname: DefaultHostname, Namespace: "hashicorp", Type: "null"}
	sampleModule   = ModuleAddr{Hostname: DefaultHostname, Namespace: "cloudposse", Name: "label", System: "null"}
)

// ipv6HostRe is a bracketed IPv6 literal with an optional port.
var ipv6HostRe = regexp.MustCompile(`^\[([0-9A-Fa-f:.]+)\](?::[1-9][0-9]{0,4})?$`)

// registry checks target.registry: "oci-layout:PATH" or host[:port].
func (w *walker) registry(n *yaml.Node, s string) {
	if p, ok := strings.CutPrefix(s, layoutPrefix); ok {
		if p == "" {
			w.problemf(n, "target.registry %q names no directory; write e.g. %q", s, DefaultRegistry)
		}
		return
	}
	switch {
	case strings.Contains(s, "://"):
		_, rest, _ := strings.Cut(s, "://")
		w.problemf(n, "target.registry is host[:port], not a URL: write %q (and insecure: true for plain HTTP)", strings.TrimSuffix(rest, "/"))
	case strings.Contains(s, "/"):
		w.problemf(n, "target.registry is host[:port] only; put path prefixes into providers_repository and modules_repository")
	case strings.HasPrefix(s, "["):
		if m := ipv6HostRe.FindStringSubmatch(s); m == nil || net.ParseIP(m[1]) == nil {
			w.problemf(n, "target.registry %q is not a valid [IPv6]:port", s)
		}
	default:
		if _, err := parseHostname(s); err != nil {
			w.problemf(n, "target.registry: %v (or write oci-layout:PATH for a local directory)", err)
		}
	}
}

// knownServices are the discovery services a host override may replace.
var knownServices = []string{"providers.v1", "modules.v1"}

func (w *walker) upstream(n *yaml.Node) Upstream {
	var u Upstream
	if isNull(n) {
		return u
	}
	m := w.mapping(n, "upstream", "ca_file", "hosts")
	if s, ok := w.str(m["ca_file"].value, "upstream.ca_file"); ok {
		u.CAFile = resolvePath(w.baseDir, s)
	}
	hosts := m["hosts"].value
	if isNull(hosts) {
		return u
	}
	fields, ok := w.pairs(hosts, "upstream.hosts")
	if !ok {
		return u
	}
	u.Hosts = make(map[string]HostOverride, len(fields))
	firstAt := make(map[string]*yaml.Node, len(fields))
	for _, f := range fields {
		host, err := parseHostname(f.key.Value)
		if err != nil {
			w.problemf(f.key, "upstream.hosts: %v", err)
			continue
		}
		if first, dup := firstAt[host]; dup {
			w.problemf(f.key, "duplicate host %q in upstream.hosts (first at line %d, column %d)", host, first.Line, first.Column)
			continue
		}
		firstAt[host] = f.key
		u.Hosts[host] = w.hostOverride(f.value, "upstream.hosts."+host)
	}
	return u
}

// trust reads the trust section: key files, the pinned key directory and
// the providers allowed unsigned.
func (w *walker) trust(n *yaml.Node) Trust {
	var t Trust
	if isNull(n) {
		return t
	}
	m := w.mapping(n, "trust", "bundle_keys", "provider_keys", "allow_unsigned_providers")
	if f, ok := m["bundle_keys"]; ok && !isNull(f.value) {
		items, _ := w.sequence(f.value, "trust.bundle_keys")
		for i, it := range items {
			if s, ok := w.str(it, fmt.Sprintf("trust.bundle_keys[%d]", i)); ok {
				if s == "" {
					w.problemf(it, "trust.bundle_keys[%d] is empty: name an ASCII-armored public key file", i)
					continue
				}
				t.BundleKeys = append(t.BundleKeys, resolvePath(w.baseDir, s))
			}
		}
	}
	if s, ok := w.str(m["provider_keys"].value, "trust.provider_keys"); ok && s != "" {
		t.ProviderKeys = resolvePath(w.baseDir, s)
	}
	if f, ok := m["allow_unsigned_providers"]; ok && !isNull(f.value) {
		items, _ := w.sequence(f.value, "trust.allow_unsigned_providers")
		for i, it := range items {
			what := fmt.Sprintf("trust.allow_unsigned_providers[%d]", i)
			s, ok := w.str(it, what)
			if !ok {
				continue
			}
			pattern, err := parseUnsignedPattern(s)
			if err != nil {
				w.problemf(it, "%s: %v", what, err)
				continue
			}
			t.AllowUnsignedProviders = append(t.AllowUnsignedProviders, pattern)
		}
	}
	return t
}

// parseUnsignedPattern accepts a provider address or a namespace glob
// ("namespace/*", "host/namespace/*") and returns it normalised with its
// hostname.
func parseUnsignedPattern(s string) (string, error) {
	if rest, ok := strings.CutSuffix(s, "/*"); ok {
		parts := strings.Split(rest, "/")
		if len(parts) == 1 {
			parts = []string{DefaultHostname, parts[0]}
		}
		if len(parts) != 2 || parts[1] == "" || strings.Contains(parts[1], "*") {
			return "", fmt.Errorf("%q is not a provider address or a namespace glob like \"registry.opentofu.org/hashicorp/*\"", s)
		}
		a, err := ParseProviderAddr(parts[0] + "/" + parts[1] + "/x")
		if err != nil {
			return "", fmt.Errorf("%q: %v", s, err)
		}
		return a.Hostname + "/" + a.Namespace + "/*", nil
	}
	a, err := ParseProviderAddr(s)
	if err != nil {
		return "", fmt.Errorf("%q is not a provider address or a namespace glob: %v", s, err)
	}
	return a.String(), nil
}

func (w *walker) hostOverride(n *yaml.Node, what string) HostOverride {
	h := HostOverride{Services: map[string]string{}}
	if isNull(n) {
		return h
	}
	services := w.mapping(n, what, "services")["services"].value
	if isNull(services) {
		return h
	}
	for id, f := range w.mapping(services, what+".services", knownServices...) {
		s, ok := w.str(f.value, what+".services."+id)
		if !ok {
			if isNull(f.value) {
				w.problemf(f.key, "%s.services.%s needs a URL", what, id)
			}
			continue
		}
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			w.problemf(f.value, "%s.services.%s must be an absolute http(s) URL, not %q", what, id, s)
			continue
		}
		h.Services[id] = s
	}
	return h
}

// listState tells a platforms key that is absent from one that is present
// but had mistakes, so a bad default list does not also make every provider
// "have no platforms".
type listState int

const (
	listAbsent listState = iota
	listOK
	listInvalid
)

// platforms reads a platform list, sorted and deduplicated.
func (w *walker) platforms(n *yaml.Node, what string) ([]Platform, listState) {
	items, ok := w.sequence(n, what)
	if !ok {
		if isNull(n) {
			return nil, listAbsent
		}
		return nil, listInvalid
	}
	state := listOK
	var out []Platform
	for i, item := range items {
		s, ok := w.str(item, fmt.Sprintf("%s[%d]", what, i))
		if !ok {
			if isNull(item) {
				w.problemf(item, "%s[%d] is empty", what, i)
			}
			state = listInvalid
			continue
		}
		p, err := ParsePlatform(s)
		if err != nil {
			w.problemf(item, "%v", err)
			state = listInvalid
			continue
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Platform) int { return strings.Compare(a.String(), b.String()) })
	return slices.Compact(out), state
}

// providerEntry and moduleEntry are entries being read, with whether their
// source parsed: only those get a repository.
type providerEntry struct {
	Provider
	sourceOK bool
}

type moduleEntry struct {
	Module
	sourceOK bool
}

func (w *walker) providers(n *yaml.Node, defaults []Platform, defaultsState listState) []providerEntry {
	items, _ := w.sequence(n, "providers")
	var out []providerEntry
	for i, item := range items {
		what := fmt.Sprintf("providers[%d]", i)
		m := w.mapping(item, what, "source", "versions", "newest", "platforms")
		if m == nil {
			continue
		}
		e := providerEntry{Provider: Provider{Line: item.Line, Column: item.Column}}
		e.Source, e.sourceOK = source(w, item, m["source"], what, ParseProviderAddr)
		e.Versions, e.Constraints = w.versions(item, m["versions"], what, ParseProviderConstraints)
		e.Newest = w.newest(m["newest"].value, what)
		own, ownState := w.platforms(m["platforms"].value, what+".platforms")
		switch {
		case ownState == listOK && len(own) == 0:
			w.problemf(m["platforms"].value, "%s.platforms is empty; list at least one platform or remove the key to use the top-level platforms", what)
		case ownState == listOK:
			e.Platforms = own
		case ownState == listAbsent && len(defaults) > 0:
			e.Platforms = slices.Clone(defaults)
		case ownState == listAbsent && defaultsState != listInvalid:
			w.problemf(item, "%s has no platforms: set platforms on it or a top-level platforms list", what)
		}
		out = append(out, e)
	}
	return out
}

func (w *walker) modules(n *yaml.Node) []moduleEntry {
	items, _ := w.sequence(n, "modules")
	var out []moduleEntry
	for i, item := range items {
		what := fmt.Sprintf("modules[%d]", i)
		m := w.mapping(item, what, "source", "versions", "newest")
		if m == nil {
			continue
		}
		e := moduleEntry{Module: Module{Line: item.Line, Column: item.Column}}
		e.Source, e.sourceOK = source(w, item, m["source"], what, ParseModuleAddr)
		e.Versions, e.Constraints = w.versions(item, m["versions"], what, ParseModuleConstraints)
		e.Newest = w.newest(m["newest"].value, what)
		out = append(out, e)
	}
	return out
}

// source reads and parses the source key an entry must have.
func source[A any](w *walker, item *yaml.Node, f field, what string, parse func(string) (A, error)) (A, bool) {
	var zero A
	s, ok := w.required(item, f, what, "source")
	if !ok {
		return zero, false
	}
	a, err := parse(s)
	if err != nil {
		w.problemf(f.value, "%v", err)
		return zero, false
	}
	return a, true
}

// required reads a string key that an entry must have, reporting it at the
// entry when missing.
func (w *walker) required(item *yaml.Node, f field, what, key string) (string, bool) {
	s, ok := w.str(f.value, what+"."+key)
	if !ok {
		if isNull(f.value) {
			w.problemf(item, "%s: missing required key %q", what, key)
		}
		return "", false
	}
	if strings.TrimSpace(s) == "" {
		w.problemf(f.value, "%s.%s is empty", what, key)
		return "", false
	}
	return s, true
}

func (w *walker) versions(item *yaml.Node, f field, what string, parse func(string) (Constraints, error)) (string, Constraints) {
	s, ok := w.required(item, f, what, "versions")
	if !ok {
		return "", Constraints{}
	}
	c, err := parse(s)
	if err != nil {
		w.problemf(f.value, "%v", err)
		return s, Constraints{}
	}
	return s, c
}

// newest reads an entry's "newest: N", a whole number of at least 1; 0
// when the key is absent (keep every version) or wrong (problem recorded).
func (w *walker) newest(n *yaml.Node, what string) int {
	n = resolve(n)
	if isNull(n) {
		return 0
	}
	var v int
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&v) != nil {
		w.problemf(n, "%s.newest must be a whole number of versions to keep, not %s", what, describe(n))
		return 0
	}
	if v < 1 {
		w.problemf(n, "%s.newest is %d; keep at least 1 version, or remove the key to keep every version the constraint allows", what, v)
		return 0
	}
	return v
}

// maxNamedSharers bounds how many other entries one "shared repository"
// problem names, so a template without variables stays readable.
const maxNamedSharers = 3

// repositories renders each entry's repository and reports names that are
// invalid or shared, naming every entry that shares one: two sources in one
// repository would mix their tags.
func (w *walker) repositories(tmpl templates, providers []providerEntry, modules []moduleEntry) {
	type user struct {
		label        string
		line, column int
	}
	byRepo := map[string][]user{}
	var order []string
	// place records the outcome of rendering one entry's repository and
	// returns the repository ("" after a problem).
	place := func(label string, line, column int, repo string, err error) string {
		if err != nil {
			w.problems = append(w.problems, Problem{File: w.file, Line: line, Column: column,
				Message: fmt.Sprintf("%s: %v", label, err)})
			return ""
		}
		if _, seen := byRepo[repo]; !seen {
			order = append(order, repo)
		}
		byRepo[repo] = append(byRepo[repo], user{label, line, column})
		return repo
	}
	for i := range providers {
		if p := &providers[i]; p.sourceOK && tmpl.providersOK {
			repo, err := RenderProviderRepository(tmpl.providers, p.Source)
			p.Repository = place("provider "+p.Source.String(), p.Line, p.Column, repo, err)
		}
	}
	for i := range modules {
		if m := &modules[i]; m.sourceOK && tmpl.modulesOK {
			repo, err := RenderModuleRepository(tmpl.modules, m.Source)
			m.Repository = place("module "+m.Source.String(), m.Line, m.Column, repo, err)
		}
	}
	for _, repo := range order {
		users := byRepo[repo]
		if len(users) < 2 {
			continue
		}
		for i, u := range users {
			var others []string
			for j, o := range users {
				if j == i {
					continue
				}
				if len(others) == maxNamedSharers {
					others = append(others, fmt.Sprintf("%d more", len(users)-1-maxNamedSharers))
					break
				}
				others = append(others, fmt.Sprintf("%s at line %d, column %d", o.label, o.line, o.column))
			}
			w.problems = append(w.problems, Problem{File: w.file, Line: u.line, Column: u.column,
				Message: fmt.Sprintf("%s renders repository %q, as does %s; each source needs its own repository (list a source once, or change the template)",
					u.label, repo, strings.Join(others, " and "))})
		}
	}
}
