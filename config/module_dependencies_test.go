package config

import (
	"errors"
	"strings"
	"testing"
)

func TestModuleDependencies(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want ModuleDependencies
	}{
		{"version: 1\n", ModuleDependenciesWarn},
		{"version: 1\nmodule_dependencies:\n", ModuleDependenciesWarn},
		{"version: 1\nmodule_dependencies: warn\n", ModuleDependenciesWarn},
		{"version: 1\nmodule_dependencies: rewrite\n", ModuleDependenciesRewrite},
		{"version: 1\nmodule_dependencies: \"rewrite\"\n", ModuleDependenciesRewrite},
	} {
		cfg, err := Parse("mirror.yaml", []byte(tc.yaml))
		if err != nil {
			t.Fatalf("%q: %v", tc.yaml, err)
		}
		if cfg.ModuleDependencies != tc.want {
			t.Errorf("%q: ModuleDependencies = %q, want %q", tc.yaml, cfg.ModuleDependencies, tc.want)
		}
	}
}

func TestModuleDependenciesProblems(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"version: 1\nmodule_dependencies: Rewrite\n", `mirror.yaml:2:22: module_dependencies must be "warn" or "rewrite", not "Rewrite"`},
		{"version: 1\nmodule_dependencies: [rewrite]\n", `mirror.yaml:2:22: module_dependencies must be a string, not a list`},
		{"version: 1\nmodule_dependency: rewrite\n", `mirror.yaml:2:1: unknown key "module_dependency" in the plan; known keys: version, target, upstream, platforms, providers, modules, module_dependencies, trust`},
	} {
		_, err := Parse("mirror.yaml", []byte(tc.yaml))
		var le *LoadError
		if !errors.As(err, &le) || !errors.Is(err, ErrInvalidPlan) {
			t.Fatalf("%q: err = %v, want a *LoadError", tc.yaml, err)
		}
		var got []string
		for _, p := range le.Problems {
			got = append(got, p.Error())
		}
		if len(got) != 1 || got[0] != tc.want {
			t.Errorf("%q: problems\n%s\nwant\n%s", tc.yaml, strings.Join(got, "\n"), tc.want)
		}
	}
}
