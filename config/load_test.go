package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// fullPlan sets every key the schema has.
const fullPlan = `version: 1
target:
  registry: registry.example.internal:5000
  insecure: true
  ca_file: certs/registry.pem
  providers_repository: "mirror/${hostname}/${namespace}/${type}"
  modules_repository: "mirror-modules/${namespace}/${name}/${system}"
  provenance: tag
upstream:
  ca_file: /etc/ssl/upstream.pem
  hosts:
    Registry.OpenTofu.org:
      services:
        providers.v1: https://registry-proxy.example/v1/providers/
        modules.v1: https://registry-proxy.example/v1/modules/
    private.example:8443: {}
platforms: [linux_amd64, darwin_arm64, linux_amd64]
providers:
  - source: hashicorp/aws
    versions: ">= 5.80.0, < 6.0.0"
  - source: Private.Example/Acme/Widget
    versions: "~> 3.6"
    platforms: [windows_amd64, linux_arm64]
modules:
  - source: terraform-aws-modules/vpc/aws
    versions: "~> 5.0"
  - source: private.example:8443/Acme/Net/aws
    versions: "= 1.2.3-beta.1"
`

func TestParseFullPlan(t *testing.T) {
	path := filepath.Join("plans", "mirror.yaml")
	cfg, err := Parse(path, []byte(fullPlan))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if cfg.Path != path || cfg.Version != 1 {
		t.Errorf("Path, Version = %q, %d; want %q, 1", cfg.Path, cfg.Version, path)
	}
	wantTarget := Target{
		Registry:            "registry.example.internal:5000",
		Insecure:            true,
		CAFile:              filepath.Join("plans", "certs", "registry.pem"),
		ProvidersRepository: "mirror/${hostname}/${namespace}/${type}",
		ModulesRepository:   "mirror-modules/${namespace}/${name}/${system}",
		Provenance:          ProvenanceTag,
		baseDir:             "plans",
	}
	if cfg.Target != wantTarget {
		t.Errorf("Target = %+v\nwant     %+v", cfg.Target, wantTarget)
	}
	if _, ok := cfg.Target.LayoutDir(); ok {
		t.Errorf("LayoutDir ok for a registry host")
	}
	wantUpstream := Upstream{
		CAFile: "/etc/ssl/upstream.pem",
		Hosts: map[string]HostOverride{
			"registry.opentofu.org": {Services: map[string]string{
				"providers.v1": "https://registry-proxy.example/v1/providers/",
				"modules.v1":   "https://registry-proxy.example/v1/modules/",
			}},
			"private.example:8443": {Services: map[string]string{}},
		},
	}
	if !reflect.DeepEqual(cfg.Upstream, wantUpstream) {
		t.Errorf("Upstream = %+v\nwant       %+v", cfg.Upstream, wantUpstream)
	}
	if got := platformStrings(cfg.Platforms); !slices.Equal(got, []string{"darwin_arm64", "linux_amd64"}) {
		t.Errorf("Platforms = %v; want sorted and deduplicated", got)
	}

	type provider struct {
		source, versions, constraints, repository string
		platforms                                 []string
		line, column                              int
	}
	var gotProviders []provider
	for _, p := range cfg.Providers {
		gotProviders = append(gotProviders, provider{p.Source.String(), p.Versions, p.Constraints.String(), p.Repository, platformStrings(p.Platforms), p.Line, p.Column})
	}
	wantProviders := []provider{
		{"registry.opentofu.org/hashicorp/aws", ">= 5.80.0, < 6.0.0", ">= 5.80.0, < 6.0.0",
			"mirror/registry.opentofu.org/hashicorp/aws", []string{"darwin_arm64", "linux_amd64"}, 19, 5},
		{"private.example/acme/widget", "~> 3.6", "~> 3.6",
			"mirror/private.example/acme/widget", []string{"linux_arm64", "windows_amd64"}, 21, 5},
	}
	if !reflect.DeepEqual(gotProviders, wantProviders) {
		t.Errorf("Providers =\n%+v\nwant\n%+v", gotProviders, wantProviders)
	}

	type module struct {
		source, versions, repository string
		line, column                 int
	}
	var gotModules []module
	for _, m := range cfg.Modules {
		gotModules = append(gotModules, module{m.Source.String(), m.Versions, m.Repository, m.Line, m.Column})
	}
	wantModules := []module{
		{"registry.opentofu.org/terraform-aws-modules/vpc/aws", "~> 5.0", "mirror-modules/terraform-aws-modules/vpc/aws", 25, 5},
		{"private.example:8443/Acme/Net/aws", "= 1.2.3-beta.1", "mirror-modules/acme/net/aws", 27, 5},
	}
	if !reflect.DeepEqual(gotModules, wantModules) {
		t.Errorf("Modules =\n%+v\nwant\n%+v", gotModules, wantModules)
	}
}

func platformStrings(ps []Platform) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

func TestParseDefaults(t *testing.T) {
	cfg, err := Parse("", []byte("version: 1\nplatforms: [linux_amd64]\nproviders:\n  - source: hashicorp/null\n    versions: \"3.2.4\"\nmodules:\n  - source: Azure/Network/azurerm\n    versions: \"5.0.0\"\n"))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if cfg.Target.Registry != DefaultRegistry {
		t.Errorf("Registry = %q; want %q", cfg.Target.Registry, DefaultRegistry)
	}
	if cfg.Target.ProvidersRepository != DefaultProvidersRepository || cfg.Target.ModulesRepository != DefaultModulesRepository {
		t.Errorf("templates = %q, %q; want the defaults", cfg.Target.ProvidersRepository, cfg.Target.ModulesRepository)
	}
	if cfg.Target.Insecure || cfg.Target.CAFile != "" || cfg.Upstream.CAFile != "" || len(cfg.Upstream.Hosts) != 0 {
		t.Errorf("unset keys are not zero: %+v %+v", cfg.Target, cfg.Upstream)
	}
	if got := cfg.Providers[0].Source; got != (ProviderAddr{DefaultHostname, "hashicorp", "null"}) {
		t.Errorf("provider source = %+v; want the default hostname", got)
	}
	if got := cfg.Providers[0].Repository; got != "opentofu-providers/hashicorp/null" {
		t.Errorf("provider repository = %q", got)
	}
	// Mixed-case module namespaces exist on the registry; the address keeps
	// them for API calls, the repository is lower-cased.
	if got := cfg.Modules[0].Source; got != (ModuleAddr{DefaultHostname, "Azure", "Network", "azurerm"}) {
		t.Errorf("module source = %+v", got)
	}
	if got := cfg.Modules[0].Repository; got != "opentofu-modules/azure/network/azurerm" {
		t.Errorf("module repository = %q", got)
	}
	dir, ok := cfg.Target.LayoutDir()
	if !ok || dir != "mirror" {
		t.Errorf("LayoutDir = %q, %v; want mirror (relative to the working directory), true", dir, ok)
	}
}

func TestParseEmptyValuesMeanDefaults(t *testing.T) {
	cfg, err := Parse("mirror.yaml", []byte("version: 1\ntarget:\n  registry: \"\"\n  providers_repository:\n  modules_repository: ~\nupstream:\nplatforms:\nproviders:\nmodules: []\n"))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if cfg.Target.Registry != DefaultRegistry || cfg.Target.ProvidersRepository != DefaultProvidersRepository || cfg.Target.ModulesRepository != DefaultModulesRepository {
		t.Errorf("Target = %+v; want defaults", cfg.Target)
	}
	if len(cfg.Platforms)+len(cfg.Providers)+len(cfg.Modules) != 0 {
		t.Errorf("lists not empty: %+v", cfg)
	}
	if cfg.Target.Provenance != ProvenanceAuto {
		t.Errorf("Target.Provenance = %q; want the default auto", cfg.Target.Provenance)
	}
}

func TestParseProvenanceModes(t *testing.T) {
	for _, mode := range ProvenanceModes {
		cfg, err := Parse("mirror.yaml", []byte("version: 1\ntarget:\n  provenance: "+string(mode)+"\n"))
		if err != nil {
			t.Fatalf("%s: Parse: %v", mode, err)
		}
		if cfg.Target.Provenance != mode {
			t.Errorf("target.provenance: %s gave %q", mode, cfg.Target.Provenance)
		}
	}
}

func TestLayoutDir(t *testing.T) {
	abs := filepath.Join(t.TempDir(), "layout")
	tests := []struct {
		name, planPath, registry string
		want                     string
		wantOK                   bool
	}{
		{"default next to the plan", filepath.Join("/srv", "plans", "mirror.yaml"), "", filepath.Join("/srv", "plans", "mirror"), true},
		{"relative plan path", filepath.Join("plans", "mirror.yaml"), "oci-layout:out/../layout", filepath.Join("plans", "layout"), true},
		{"plan in working directory", "mirror.yaml", "oci-layout:./mirror", "mirror", true},
		{"no plan path", "", "oci-layout:./mirror", "mirror", true},
		{"absolute layout path", filepath.Join("/srv", "plans", "mirror.yaml"), "oci-layout:" + abs, abs, true},
		{"registry host", "mirror.yaml", "localhost:5000", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := "version: 1\n"
			if tt.registry != "" {
				plan += "target:\n  registry: " + tt.registry + "\n"
			}
			cfg, err := Parse(tt.planPath, []byte(plan))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			dir, ok := cfg.Target.LayoutDir()
			if dir != tt.want || ok != tt.wantOK {
				t.Errorf("LayoutDir() = %q, %v; want %q, %v", dir, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestLoadResolvesPathsAgainstThePlanDirectory(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, DefaultFile)
	plan := "version: 1\ntarget:\n  ca_file: ca/registry.pem\nupstream:\n  ca_file: ../upstream.pem\n"
	if err := os.WriteFile(path, []byte(plan), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.Path != path {
		t.Errorf("Path = %q; want %q", cfg.Path, path)
	}
	if want := filepath.Join(dir, "ca", "registry.pem"); cfg.Target.CAFile != want {
		t.Errorf("Target.CAFile = %q; want %q", cfg.Target.CAFile, want)
	}
	if want := filepath.Join(filepath.Dir(dir), "upstream.pem"); cfg.Upstream.CAFile != want {
		t.Errorf("Upstream.CAFile = %q; want %q", cfg.Upstream.CAFile, want)
	}
	if got, _ := cfg.Target.LayoutDir(); got != filepath.Join(dir, "mirror") {
		t.Errorf("LayoutDir = %q; want %q", got, filepath.Join(dir, "mirror"))
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := Load(path)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load = %v; want fs.ErrNotExist", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the file", err)
	}
}

func TestLoadReportsProblemsWithThePath(t *testing.T) {
	path := filepath.Join(t.TempDir(), DefaultFile)
	if err := os.WriteFile(path, []byte("version: 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if !errors.Is(err, ErrInvalidPlan) {
		t.Fatalf("Load = %v; want ErrInvalidPlan", err)
	}
	if want := path + ":1:10: unsupported plan version 3; this program reads version 1"; err.Error() != want {
		t.Errorf("error = %q; want %q", err, want)
	}
}

// TestLoadExample keeps the example in the repository root loadable and
// pins what a newcomer gets from it.
func TestLoadExample(t *testing.T) {
	path := filepath.Join("..", "mirror.example.yaml")
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.Target.Registry != DefaultRegistry {
		t.Errorf("Registry = %q; the example should use the default layout", cfg.Target.Registry)
	}
	if dir, _ := cfg.Target.LayoutDir(); dir != filepath.Join("..", "mirror") {
		t.Errorf("LayoutDir = %q; want ../mirror", dir)
	}
	var got []string
	for _, p := range cfg.Providers {
		got = append(got, p.Source.String()+" "+p.Constraints.String()+" "+strings.Join(platformStrings(p.Platforms), ","))
	}
	for _, m := range cfg.Modules {
		got = append(got, m.Source.String()+" "+m.Constraints.String()+" "+m.Repository)
	}
	want := []string{
		"registry.opentofu.org/hashicorp/null ~> 3.2.0 linux_amd64",
		"registry.opentofu.org/hashicorp/random = 3.6.3 linux_amd64",
		"registry.opentofu.org/cloudposse/label/null = 0.25.0 opentofu-modules/cloudposse/label/null",
	}
	if !slices.Equal(got, want) {
		t.Errorf("entries =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestParseProblems(t *testing.T) {
	for _, tc := range problemCases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("mirror.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", cfg)
			}
			if cfg != nil {
				t.Errorf("Parse returned a config with an error")
			}
			if !errors.Is(err, ErrInvalidPlan) {
				t.Errorf("errors.Is(err, ErrInvalidPlan) = false for %v", err)
			}
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("error is %T, not *LoadError", err)
			}
			got := make([]string, len(le.Problems))
			for i, p := range le.Problems {
				got[i] = p.Error()
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if err.Error() != strings.Join(tc.want, "\n") {
				t.Errorf("Error() does not list the problems one per line:\n%s", err)
			}
		})
	}
}

// TestParseReportsEveryProblemTogether puts mistakes of every kind in one
// file: a user must see all of them from one run.
func TestParseReportsEveryProblemTogether(t *testing.T) {
	plan := `version: 2
target:
  registry: https://registry.example
  insecure: maybe
  provider_repository: x
  modules_repository: "m/${nope}"
upstream:
  hosts:
    registry.opentofu.org:
      services:
        providers.v1: /relative/
platforms: [linux-amd64]
providers:
  - source: hashicorp
    versions: "v1.0.0"
  - source: hashicorp/aws
    versions: "~> 5.0"
  - source: hashicorp/aws
    versions: [5]
    platforms: [darwin_arm64]
modules:
  - source: a/b
  - source: a/b/c
    versions: "1.0"
    versions: "2.0"
`
	_, err := Parse("mirror.yaml", []byte(plan))
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("Parse = %v; want *LoadError", err)
	}
	want := []string{
		"mirror.yaml:1:10: unsupported plan version 2; this program reads version 1",
		`mirror.yaml:3:13: target.registry is host[:port], not a URL: write "registry.example" (and insecure: true for plain HTTP)`,
		`mirror.yaml:4:13: target.insecure must be true or false, not the string "maybe"`,
		`mirror.yaml:5:3: unknown key "provider_repository" in target; did you mean "providers_repository"?`,
		`mirror.yaml:6:23: target.modules_repository: invalid repository template "m/${nope}": unknown variable ${nope}; known: ${hostname} ${namespace} ${name} ${system}`,
		`mirror.yaml:11:23: upstream.hosts.registry.opentofu.org.services.providers.v1 must be an absolute http(s) URL, not "/relative/"`,
		`mirror.yaml:12:13: invalid platform "linux-amd64": want OS_ARCH with exactly one underscore, e.g. linux_amd64`,
		`mirror.yaml:14:13: invalid provider source address "hashicorp": want [HOSTNAME/]NAMESPACE/TYPE, e.g. hashicorp/aws`,
		`mirror.yaml:15:15: invalid version constraint "v1.0.0": invalid specification "v1.0.0": a "v" prefix should not be used when specifying versions`,
		`mirror.yaml:16:5: provider registry.opentofu.org/hashicorp/aws renders repository "opentofu-providers/hashicorp/aws", as does provider registry.opentofu.org/hashicorp/aws at line 18, column 5; each source needs its own repository (list a source once, or change the template)`,
		`mirror.yaml:18:5: provider registry.opentofu.org/hashicorp/aws renders repository "opentofu-providers/hashicorp/aws", as does provider registry.opentofu.org/hashicorp/aws at line 16, column 5; each source needs its own repository (list a source once, or change the template)`,
		`mirror.yaml:19:15: providers[2].versions must be a string, not a list`,
		`mirror.yaml:22:5: modules[0]: missing required key "versions"`,
		`mirror.yaml:22:13: invalid module source address "a/b": want [HOSTNAME/]NAMESPACE/NAME/SYSTEM, e.g. terraform-aws-modules/vpc/aws`,
		`mirror.yaml:25:5: duplicate key "versions" in modules[1] (first at line 24, column 5)`,
	}
	got := make([]string, len(le.Problems))
	for i, p := range le.Problems {
		got[i] = p.Error()
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestProblemError(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{"m.yaml", 3, 7, "bad"}, "m.yaml:3:7: bad"},
		{Problem{"m.yaml", 3, 0, "bad"}, "m.yaml:3: bad"},
		{Problem{"m.yaml", 0, 0, "bad"}, "m.yaml: bad"},
		{Problem{"", 1, 2, "bad"}, "<plan>:1:2: bad"},
	}
	for _, tt := range tests {
		if got := tt.p.Error(); got != tt.want {
			t.Errorf("Error() = %q; want %q", got, tt.want)
		}
	}
}
