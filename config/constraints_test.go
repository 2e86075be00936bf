package config

import (
	"errors"
	"testing"
)

// TestProviderConstraintsAllows is OpenTofu's provider selection
// (go-versions' ParseRubyStyleMulti + MeetingConstraints) on the cases
// where a home-made parser goes wrong: pre-releases, build metadata, !=, ~>.
func TestProviderConstraintsAllows(t *testing.T) {
	tests := []struct {
		constraints string
		allowed     []string
		refused     []string
	}{
		{"~> 1.2", []string{"1.2.0", "1.2.9", "1.9.0", "1.99.99"}, []string{"1.1.9", "2.0.0", "0.9.0", "1.5.0-beta1"}},
		{"~> 1.2.3", []string{"1.2.3", "1.2.10"}, []string{"1.2.2", "1.3.0", "1.3.1", "2.0.0", "1.2.4-rc1"}},
		{"~> 1", []string{"1.0.0", "1.7.2"}, []string{"0.9.9", "2.0.0"}},
		{"~> 0.1", []string{"0.1.0", "0.9.9"}, []string{"0.0.9", "1.0.0"}},
		{">= 5.80.0, < 6.0.0", []string{"5.80.0", "5.99.1"}, []string{"5.79.9", "6.0.0", "6.0.0-beta1", "5.90.0-rc1"}},
		{"!= 1.2.3", []string{"1.2.2", "1.2.4"}, []string{"1.2.3", "1.2.4-beta"}},
		{">= 1.0, != 1.5.0", []string{"1.0.0", "1.4.9", "1.5.1"}, []string{"0.9.0", "1.5.0"}},
		{"> 1.0", []string{"1.0.1"}, []string{"1.0.0"}},
		{"<= 1.0", []string{"1.0.0", "0.1.0"}, []string{"1.0.1"}},
		{"< 2.0.0", []string{"1.9.9"}, []string{"2.0.0", "2.0.0-rc1", "1.9.9-rc1"}},
		// Build metadata: "= 1.1.0" is exactly 1.1.0, not 1.1.0+build.5, and
		// "!= 1.1.0" therefore keeps 1.1.0+build.5.
		{"= 1.1.0", []string{"1.1.0"}, []string{"1.1.0+build.5", "1.1.1", "1.1.0-rc1"}},
		{"1.1.0", []string{"1.1.0"}, []string{"1.1.0+build.5"}},
		{"!= 1.1.0", []string{"1.0.0", "1.1.0+build.5", "1.2.0"}, []string{"1.1.0"}},
		{"= 1.0.0+ent.1", []string{"1.0.0+ent.1"}, []string{"1.0.0", "1.0.0+ent.2"}},
		{">= 1.0.0", []string{"1.0.0", "1.0.0+other", "2.0.0"}, []string{"0.9.0", "1.1.0-beta"}},
		// Pre-releases: only when named exactly, with = or as a bare version.
		{"= 1.2.0-beta1", []string{"1.2.0-beta1"}, []string{"1.2.0-beta2", "1.2.0"}},
		{"1.2.0-beta1", []string{"1.2.0-beta1"}, []string{"1.2.0-beta2"}},
		{">= 1.0.0, = 1.2.0-beta1", []string{"1.2.0-beta1"}, []string{"1.1.0", "1.2.0"}},
		{">= 1.2.0-beta1", []string{"1.2.0", "1.3.0"}, []string{"1.2.0-beta1", "1.2.0-beta2"}},
		{"~> 1.2.0-beta1", []string{"1.2.0", "1.2.5"}, []string{"1.2.0-beta1", "1.2.0-beta2", "1.3.0"}},
		{"!= 1.2.0-beta1", []string{"1.2.0"}, []string{"1.2.0-beta1", "1.2.0-beta2"}},
		// Registry versions take no "v"; a provider version with one never matches.
		{">= 1.0.0", []string{"1.1.0"}, []string{"v1.1.0", "latest", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.constraints, func(t *testing.T) {
			c, err := ParseProviderConstraints(tt.constraints)
			if err != nil {
				t.Fatalf("ParseProviderConstraints: %v", err)
			}
			for _, v := range tt.allowed {
				if !c.Allows(v) {
					t.Errorf("%q refuses %s", tt.constraints, v)
				}
			}
			for _, v := range tt.refused {
				if c.Allows(v) {
					t.Errorf("%q allows %s", tt.constraints, v)
				}
			}
		})
	}
}

// TestModuleConstraintsAllows is OpenTofu's module installer: go-version's
// Check (a "v" prefix fine on both sides, "~> 1" unbounded above as
// go-version reads it), and a pre-release only when the whole constraint is
// one exact version that go-versions' npm-style parser reads ("= 1.2.0-rc1"
// with a space is not).
func TestModuleConstraintsAllows(t *testing.T) {
	tests := []struct {
		constraints string
		allowed     []string
		refused     []string
	}{
		{"~> 1.2", []string{"1.2.0", "1.9.0", "v1.3.0"}, []string{"1.1.9", "2.0.0", "1.5.0-beta1"}},
		{"~> 1.2.3", []string{"1.2.3", "1.2.10", "v1.2.4"}, []string{"1.3.0", "1.2.4-rc1"}},
		{"~> 1", []string{"1.0.0", "1.7.2", "2.0.0"}, []string{"0.9.9"}},
		{"v1.2.0", []string{"1.2.0", "v1.2.0"}, []string{"1.2.1"}},
		{">= v5.0.0, < v6", []string{"v5.8.1", "5.0.0"}, []string{"v6.0.0", "4.9.9"}},
		{"!= 1.1.0", []string{"1.0.0", "1.2.0"}, []string{"1.1.0", "v1.1.0", "1.1.0+build.5"}},
		// go-version ignores build metadata when comparing.
		{"= 1.1.0", []string{"1.1.0", "v1.1.0", "1.1.0+build.5"}, []string{"1.1.1"}},
		// Pre-releases.
		{"1.2.0-beta1", []string{"1.2.0-beta1", "v1.2.0-beta1"}, []string{"1.2.0-beta2", "1.2.0"}},
		{"=1.2.0-beta1", []string{"1.2.0-beta1"}, []string{"1.2.0"}},
		{"v1.2.0-beta1", []string{"1.2.0-beta1", "v1.2.0-beta1"}, []string{"1.2.0"}},
		{"= 1.2.0-beta1", nil, []string{"1.2.0-beta1", "1.2.0"}},
		{">= 1.0.0, = 1.2.0-beta1", nil, []string{"1.2.0-beta1", "1.2.0"}},
		{">= 1.2.0-beta1", []string{"1.2.0", "1.3.0"}, []string{"1.2.0-beta1", "1.2.0-beta2"}},
	}
	for _, tt := range tests {
		t.Run(tt.constraints, func(t *testing.T) {
			c, err := ParseModuleConstraints(tt.constraints)
			if err != nil {
				t.Fatalf("ParseModuleConstraints: %v", err)
			}
			for _, v := range tt.allowed {
				if !c.Allows(v) {
					t.Errorf("%q refuses %s", tt.constraints, v)
				}
			}
			for _, v := range tt.refused {
				if c.Allows(v) {
					t.Errorf("%q allows %s", tt.constraints, v)
				}
			}
		})
	}
}

func TestConstraintsZero(t *testing.T) {
	var zero Constraints
	if !zero.Allows("1.0.0") {
		t.Error("zero Constraints refuse a release")
	}
	if zero.Allows("1.0.0-rc1") || zero.Allows("v1.0.0") {
		t.Error("zero Constraints allow a pre-release or a v-prefixed version")
	}
	if zero.String() != "" {
		t.Errorf("zero String() = %q", zero.String())
	}
}

func mustParseConstraints(t *testing.T, s string) Constraints {
	t.Helper()
	c, err := ParseProviderConstraints(s)
	if err != nil {
		t.Fatalf("ParseProviderConstraints(%q): %v", s, err)
	}
	return c
}

func TestParseConstraintsErrors(t *testing.T) {
	provider := []string{
		"", "  ", ",", ", 1.0", "v1.0.0", "= v1.0.0", ">=v1", "V1.0", "1.*", "1.x", "1.2.X", "*",
		"=> 1.0", "=< 1.0", "^1.0", "~1.0", "== 1.0", ">", ">=", "latest", "1.2.3.4", "~> 1.2.3.4",
		">= 1.0 < 2.0", "1.0 || 2.0", "1.0.0-be$ta", "-1.0", "1..0",
	}
	for _, s := range provider {
		t.Run("provider "+s, func(t *testing.T) {
			if c, err := ParseProviderConstraints(s); !errors.Is(err, ErrInvalidConstraint) {
				t.Errorf("ParseProviderConstraints(%q) = %v, %v; want ErrInvalidConstraint", s, c, err)
			}
		})
	}
	for _, s := range []string{"", " ", "1.x", "^1.0", "~1.0", "== 1.0", "latest", ">= 1.0 < 2.0", "=> 1.0"} {
		t.Run("module "+s, func(t *testing.T) {
			if c, err := ParseModuleConstraints(s); !errors.Is(err, ErrInvalidConstraint) {
				t.Errorf("ParseModuleConstraints(%q) = %v, %v; want ErrInvalidConstraint", s, c, err)
			}
		})
	}
	// A "v" prefix is OpenTofu's module syntax, never its provider syntax.
	if _, err := ParseModuleConstraints(">= v1.0.0"); err != nil {
		t.Errorf("ParseModuleConstraints refuses a v prefix: %v", err)
	}
}

func TestConstraintsString(t *testing.T) {
	for in, want := range map[string]string{
		">=5.80.0,<6.0.0":           ">= 5.80.0, < 6.0.0",
		" ~> 3.6 ":                  "~> 3.6",
		"1.2.3":                     "1.2.3",
		"= 1.2.3-beta.1+b7, != 1.0": "= 1.2.3-beta.1+b7, != 1.0",
		"1.2.0-rc.next":             "1.2.0-rc.next",
	} {
		if got := mustParseConstraints(t, in).String(); got != want {
			t.Errorf("ParseProviderConstraints(%q).String() = %q; want %q", in, got, want)
		}
	}
}
