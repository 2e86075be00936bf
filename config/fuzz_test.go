package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse. It must never panic, and its
// answer must be one of: a config whose entries are complete, or a
// *LoadError with at least one positioned problem.
func FuzzParse(f *testing.F) {
	for _, tc := range problemCases {
		f.Add([]byte(tc.yaml))
	}
	f.Add([]byte(fullPlan))
	if example, err := os.ReadFile(filepath.Join("..", "mirror.example.yaml")); err == nil {
		f.Add(example)
	}
	f.Add([]byte("version: 1\na: &a [*a]\n"))
	f.Add([]byte("version: 1\nproviders: &p\n  - source: *p\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data)
		if err != nil {
			var le *LoadError
			if !errors.As(err, &le) || len(le.Problems) == 0 {
				t.Fatalf("error %v is not a *LoadError with problems", err)
			}
			if !errors.Is(err, ErrInvalidPlan) {
				t.Fatalf("error %v does not match ErrInvalidPlan", err)
			}
			for _, p := range le.Problems {
				if p.Line < 0 || p.Column < 0 || p.Message == "" || p.File != "fuzz.yaml" {
					t.Fatalf("malformed problem %+v", p)
				}
			}
			if cfg != nil {
				t.Fatal("config returned with an error")
			}
			return
		}
		if cfg == nil || cfg.Version != 1 {
			t.Fatalf("Parse succeeded with %+v", cfg)
		}
		seen := map[string]bool{}
		for _, p := range cfg.Providers {
			if len(p.Platforms) == 0 || !ValidRepositoryName(p.Repository) || seen[p.Repository] || p.Line == 0 {
				t.Fatalf("incomplete provider %+v", p)
			}
			seen[p.Repository] = true
		}
		for _, m := range cfg.Modules {
			if !ValidRepositoryName(m.Repository) || seen[m.Repository] || m.Line == 0 {
				t.Fatalf("incomplete module %+v", m)
			}
			seen[m.Repository] = true
		}
	})
}

// FuzzParseConstraints checks the constraint parser never panics and that
// whatever it accepts can be printed and parsed again to the same thing.
func FuzzParseConstraints(f *testing.F) {
	for _, s := range []string{"~> 1.2", ">= 5.80.0, < 6.0.0", "= 1.2.0-beta1", "v1", "1.*", "~> 9223372036854775806.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseConstraints(s)
		if err != nil {
			return
		}
		again, err := ParseConstraints(c.String())
		if err != nil || again.String() != c.String() {
			t.Fatalf("%q printed as %q, which parses to %q, %v", s, c.String(), again.String(), err)
		}
	})
}
