package config

import (
	"strings"
	"testing"

	version "github.com/hashicorp/go-version"
)

func versionsOf(t *testing.T, ss ...string) []*version.Version {
	t.Helper()
	var out []*version.Version
	for _, s := range ss {
		out = append(out, version.Must(version.NewVersion(s)))
	}
	return out
}

func joined(vs []*version.Version) string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Original())
	}
	return strings.Join(out, " ")
}

// TestSelection: the one rule plan, verify and import share. newest picks
// from what meets the constraint (pre-releases excluded by it), after
// sorting and de-duplicating.
func TestSelection(t *testing.T) {
	all := []string{"1.3.0", "0.9.0", "1.0.0", "2.0.0-rc1", "1.2.0", "1.1.0", "1.2.0", "2.1.0"}
	for _, tt := range []struct {
		constraint string
		newest     int
		want       string
	}{
		{"~> 1.0", 0, "1.0.0 1.1.0 1.2.0 1.3.0"},
		{"~> 1.0", 2, "1.2.0 1.3.0"},
		{"~> 1.0", 9, "1.0.0 1.1.0 1.2.0 1.3.0"},
		{">= 0.1", 1, "2.1.0"},
		{"< 1.2", 1, "1.1.0"},
		{"= 3.0.0", 2, ""},
	} {
		c, err := ParseConstraints(tt.constraint)
		if err != nil {
			t.Fatal(err)
		}
		sel := Selection{Constraints: c, Newest: tt.newest}
		vs := versionsOf(t, all...)
		if got := joined(sel.Select(vs)); got != tt.want {
			t.Errorf("%q newest %d: Select = %q, want %q", tt.constraint, tt.newest, got, tt.want)
		}
		if joined(vs) != strings.Join(all, " ") {
			t.Fatalf("Select modified its input: %s", joined(vs))
		}
		for _, v := range vs {
			want := strings.Contains(" "+tt.want+" ", " "+v.Original()+" ")
			if got := sel.Keeps(v, vs); got != want {
				t.Errorf("%q newest %d: Keeps(%s) = %v, want %v", tt.constraint, tt.newest, v, got, want)
			}
		}
	}
	// Keeps counts the version asked about even when all lacks it.
	c, _ := ParseConstraints(">= 1.0")
	sel := Selection{Constraints: c, Newest: 1}
	if !sel.Keeps(version.Must(version.NewVersion("3.0.0")), versionsOf(t, "1.0.0", "2.0.0")) ||
		sel.Keeps(version.Must(version.NewVersion("1.5.0")), versionsOf(t, "1.0.0", "2.0.0")) {
		t.Error("Keeps with a version outside all")
	}
}

// TestNewestLoads: the key reaches both kinds of entry; absent means 0.
func TestNewestLoads(t *testing.T) {
	cfg, err := Parse("mirror.yaml", []byte(`version: 1
platforms: [linux_amd64]
providers:
  - source: hashicorp/aws
    versions: "~> 5.0"
    newest: 3
  - source: hashicorp/null
    versions: ">= 1.0"
modules:
  - source: a/b/c
    versions: ">= 1.0"
    newest: 1
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Providers[0].Newest != 3 || cfg.Providers[1].Newest != 0 || cfg.Modules[0].Newest != 1 {
		t.Fatalf("newest: %d %d %d", cfg.Providers[0].Newest, cfg.Providers[1].Newest, cfg.Modules[0].Newest)
	}
	if s := cfg.Modules[0].Selection(); s.Newest != 1 || !s.Constraints.Allows("1.0.0") {
		t.Fatalf("selection %+v", s)
	}
}
