// Package config reads the mirror plan, a YAML file (mirror.yaml by default)
// naming the OCI registry to fill and the providers and modules to copy into
// it from OpenTofu registries.
//
// Load and Parse check the whole file in one pass and report every mistake
// with its file:line:column in a *LoadError, so a plan is either fully valid
// or rejected with a complete list. The package does no network I/O.
package config

import (
	"path/filepath"
	"strings"
)

// Defaults applied when the plan leaves a key out.
const (
	// DefaultFile is the plan file read when the user names none.
	DefaultFile = "mirror.yaml"
	// DefaultRegistry writes an OCI image layout next to the plan file.
	DefaultRegistry = "oci-layout:./mirror"
	// DefaultProvidersRepository is the repository template for providers.
	DefaultProvidersRepository = "opentofu-providers/${namespace}/${type}"
	// DefaultModulesRepository is the repository template for modules.
	DefaultModulesRepository = "opentofu-modules/${namespace}/${name}/${system}"
	// DefaultHostname is the origin registry of sources written without one.
	DefaultHostname = "registry.opentofu.org"
)

// ProvenanceMode says where sync and import keep a provider version's
// provenance (its signed SHA256SUMS, signature and key) in the target.
type ProvenanceMode string

// The values of target.provenance.
const (
	// ProvenanceAuto writes a referrer (a manifest whose subject is the
	// index) and, once the registry refuses one in a run, keeps provenance
	// under a tag instead; a refusal never blocks a version.
	ProvenanceAuto ProvenanceMode = "auto"
	// ProvenanceReferrers writes referrers only; a refusal fails the version.
	ProvenanceReferrers ProvenanceMode = "referrers"
	// ProvenanceTag writes a manifest without subject under the tag
	// tofu-provenance-<index hex>, which OpenTofu's version parser ignores.
	ProvenanceTag ProvenanceMode = "tag"
	// ProvenanceOff keeps no provenance in the target.
	ProvenanceOff ProvenanceMode = "off"
)

// ProvenanceModes lists the valid values of target.provenance.
var ProvenanceModes = []ProvenanceMode{ProvenanceAuto, ProvenanceReferrers, ProvenanceTag, ProvenanceOff}

// layoutPrefix marks a Target.Registry that names a local OCI image layout.
const layoutPrefix = "oci-layout:"

// Config is a validated plan.
type Config struct {
	// Path is the file the plan was loaded from; "" when parsed from bytes
	// without a name.
	Path string
	// Version is the schema version; always 1 for now.
	Version int
	// Target is where artifacts are pushed.
	Target Target
	// Upstream tunes how origin registries are reached.
	Upstream Upstream
	// Platforms is the top-level default platform list, sorted and
	// deduplicated; empty when the plan gives none.
	Platforms []Platform
	// Providers are the provider entries in file order.
	Providers []Provider
	// Modules are the module entries in file order.
	Modules []Module
	// ModuleDependencies says what to do with registry modules that a
	// mirrored package's module blocks call: ModuleDependenciesWarn (the
	// default, also for a zero Config) or ModuleDependenciesRewrite.
	ModuleDependencies ModuleDependencies
	// Trust is what is accepted as signed; see [Trust].
	Trust Trust
}

// ModuleDependencies is the plan's module_dependencies policy.
type ModuleDependencies string

// Module dependency policies.
const (
	// ModuleDependenciesWarn mirrors packages as they are and warns about
	// registry modules they call that the plan lacks; "" means the same.
	ModuleDependenciesWarn ModuleDependencies = "warn"
	// ModuleDependenciesRewrite mirrors the registry modules a package
	// calls too (transitively, within each block's version constraint)
	// and rewrites the package's module blocks to their oci:// copies,
	// since OpenTofu has no module mirror to find them otherwise.
	ModuleDependenciesRewrite ModuleDependencies = "rewrite"
)

// Target is the OCI registry (or local layout) the mirror writes to.
type Target struct {
	// Registry is host[:port] of an OCI registry or "oci-layout:PATH", as
	// written; DefaultRegistry when the plan leaves it empty.
	Registry string
	// Insecure means plain HTTP to Registry; meant for labs only.
	Insecure bool
	// CAFile is an extra PEM CA bundle for the registry's TLS, resolved
	// against the plan file's directory; "" means the system roots only.
	CAFile string
	// ProvidersRepository is the repository template for providers, with
	// DefaultProvidersRepository applied when empty.
	ProvidersRepository string
	// ModulesRepository is the repository template for modules, with
	// DefaultModulesRepository applied when empty.
	ModulesRepository string
	// Provenance is where a provider version's signed SHA256SUMS is kept
	// (target.provenance); ProvenanceAuto when the plan leaves it out.
	Provenance ProvenanceMode

	// baseDir is the plan file's directory; relative layout paths are
	// resolved against it ("" means the working directory).
	baseDir string
}

// LayoutDir returns the directory and true when Registry is
// "oci-layout:PATH". A relative PATH is resolved against the directory of the
// plan file, so a plan means the same thing from any working directory.
func (t Target) LayoutDir() (string, bool) {
	p, ok := strings.CutPrefix(t.Registry, layoutPrefix)
	if !ok {
		return "", false
	}
	return resolvePath(t.baseDir, p), true
}

// Upstream holds settings for reaching origin registries.
type Upstream struct {
	// CAFile is an extra PEM CA bundle for upstream TLS, resolved against the
	// plan file's directory; "" means the system roots only.
	CAFile string
	// Hosts replaces service discovery for the named hosts, like OpenTofu's
	// CLI `host` block. Keys are lower-case hostnames (with port if given);
	// a nil or empty map means discovery everywhere.
	Hosts map[string]HostOverride
}

// HostOverride lists the service URLs of one host, skipping its
// /.well-known/terraform.json discovery.
type HostOverride struct {
	// Services maps a service ID ("providers.v1", "modules.v1") to an
	// absolute http(s) base URL, as written.
	Services map[string]string
}

// Provider is one provider entry of the plan.
type Provider struct {
	// Source is the normalised (lower-case) provider address.
	Source ProviderAddr
	// Versions is the constraint as written.
	Versions string
	// Constraints is Versions parsed.
	Constraints Constraints
	// Newest keeps only this many of the highest versions meeting
	// Constraints (the plan's "newest: N"); 0, the key left out, keeps all.
	// Select through [Provider.Selection].
	Newest int
	// Platforms is the effective list: the entry's own override, else the
	// top-level default; sorted and deduplicated, never empty.
	Platforms []Platform
	// Repository is the providers template rendered for Source.
	Repository string
	// Line and Column locate the list item in the plan, for messages.
	Line, Column int
}

// Module is one module entry of the plan.
type Module struct {
	// Source is the module address; hostname lower-cased, other parts as
	// written.
	Source ModuleAddr
	// Versions is the constraint as written.
	Versions string
	// Constraints is Versions parsed.
	Constraints Constraints
	// Newest keeps only this many of the highest versions meeting
	// Constraints (the plan's "newest: N"); 0, the key left out, keeps all.
	// Select through [Module.Selection].
	Newest int
	// Repository is the modules template rendered for Source.
	Repository string
	// Line and Column locate the list item in the plan, for messages.
	Line, Column int
}

// resolvePath joins a relative path to base; absolute paths and an empty
// path pass through unchanged.
func resolvePath(base, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(base, p)
}

// Trust pins what import (and, where set, sync and export) accept as
// signed. The zero value pins nothing: import then trusts the provider
// keys carried in a bundle only when the bundle's own signature verified
// against a bundle key, and refuses unsigned bundles.
type Trust struct {
	// BundleKeys are ASCII-armored OpenPGP public key files (resolved
	// against the plan file's directory); import accepts bundles signed by
	// one of them. Empty: no bundle signature can verify.
	BundleKeys []string
	// ProviderKeys is a directory laid out as the OpenTofu registry lays
	// out keys: <namespace>/*.asc. When set, a provider's SHA256SUMS must
	// be signed by a key pinned for its namespace, whatever key a bundle
	// or upstream offers. "" pins nothing.
	ProviderKeys string
	// AllowUnsignedProviders are provider addresses ("host/namespace/type")
	// or namespace globs ("host/namespace/*") that may come without a
	// valid signature. Empty: none may.
	AllowUnsignedProviders []string
}
