package config

import (
	"errors"
	"testing"

	version "github.com/hashicorp/go-version"
)

func TestConstraintsAllows(t *testing.T) {
	tests := []struct {
		constraints string
		allowed     []string
		refused     []string
	}{
		{"~> 1.2", []string{"1.2.0", "1.2.9", "1.9.0", "1.99.99"}, []string{"1.1.9", "2.0.0", "0.9.0", "1.5.0-beta1"}},
		{"~> 1.2.3", []string{"1.2.3", "1.2.10"}, []string{"1.2.2", "1.3.0", "1.3.1", "2.0.0", "1.2.4-rc1"}},
		// OpenTofu reads "~> 1" like "~> 1.0" (go-version alone would not
		// bound it above).
		{"~> 1", []string{"1.0.0", "1.7.2"}, []string{"0.9.9", "2.0.0"}},
		{"~> 0.1", []string{"0.1.0", "0.9.9"}, []string{"0.0.9", "1.0.0"}},
		{">= 5.80.0, < 6.0.0", []string{"5.80.0", "5.99.1"}, []string{"5.79.9", "6.0.0", "6.0.0-beta1", "5.90.0-rc1"}},
		{"!= 1.2.3", []string{"1.2.2", "1.2.4"}, []string{"1.2.3", "1.2.4-beta"}},
		{">= 1.0, != 1.5.0", []string{"1.0.0", "1.4.9", "1.5.1"}, []string{"0.9.0", "1.5.0"}},
		{"> 1.0", []string{"1.0.1"}, []string{"1.0.0"}},
		{"<= 1.0", []string{"1.0.0", "0.1.0"}, []string{"1.0.1"}},
		{"< 2.0.0", []string{"1.9.9"}, []string{"2.0.0", "2.0.0-rc1", "1.9.9-rc1"}},
		{"= 3.6.3", []string{"3.6.3", "3.6.3+build.5"}, []string{"3.6.4", "3.6.3-rc1"}},
		{"3.6.3", []string{"3.6.3"}, []string{"3.6.2"}},
		// Pre-releases: only when named exactly, with = or as a bare version.
		{"= 1.2.0-beta1", []string{"1.2.0-beta1"}, []string{"1.2.0-beta2", "1.2.0"}},
		{"1.2.0-beta1", []string{"1.2.0-beta1"}, []string{"1.2.0-beta2"}},
		{">= 1.0.0, = 1.2.0-beta1", []string{"1.2.0-beta1"}, []string{"1.1.0", "1.2.0"}},
		{">= 1.2.0-beta1", []string{"1.2.0", "1.3.0"}, []string{"1.2.0-beta1", "1.2.0-beta2"}},
		{"~> 1.2.0-beta1", []string{"1.2.0", "1.2.5"}, []string{"1.2.0-beta1", "1.2.0-beta2", "1.3.0"}},
		{"!= 1.2.0-beta1", []string{"1.2.0"}, []string{"1.2.0-beta1", "1.2.0-beta2"}},
		// Build metadata counts only where a constraint names it.
		{"= 1.0.0+ent.1", []string{"1.0.0+ent.1"}, []string{"1.0.0", "1.0.0+ent.2"}},
		{">= 1.0.0+ent.1", []string{"1.0.0", "1.0.0+other"}, []string{"0.9.0"}},
	}
	for _, tt := range tests {
		t.Run(tt.constraints, func(t *testing.T) {
			c, err := ParseConstraints(tt.constraints)
			if err != nil {
				t.Fatalf("ParseConstraints: %v", err)
			}
			for _, v := range tt.allowed {
				if !c.Allows(version.Must(version.NewVersion(v))) {
					t.Errorf("%q refuses %s", tt.constraints, v)
				}
			}
			for _, v := range tt.refused {
				if c.Allows(version.Must(version.NewVersion(v))) {
					t.Errorf("%q allows %s", tt.constraints, v)
				}
			}
		})
	}
}

// TestPessimisticMatchesGoVersion checks that our "~>" agrees with
// go-version's on releases for the two- and three-part forms OpenTofu
// documents: ~> 1.2 is >= 1.2, < 2.0 and ~> 1.2.3 is >= 1.2.3, < 1.3.0.
func TestPessimisticMatchesGoVersion(t *testing.T) {
	versions := []string{"0.9.0", "1.1.9", "1.2.0", "1.2.2", "1.2.3", "1.2.4", "1.2.10", "1.3.0", "1.9.9", "2.0.0", "2.1.0"}
	for _, s := range []string{"~> 1.2", "~> 1.2.3", "~> 0.1", "~> 2.0.0"} {
		ours, err := ParseConstraints(s)
		if err != nil {
			t.Fatal(err)
		}
		theirs := version.MustConstraints(version.NewConstraint(s))
		for _, vs := range versions {
			v := version.Must(version.NewVersion(vs))
			if got, want := ours.Allows(v), theirs.Check(v); got != want {
				t.Errorf("%q on %s: Allows = %v, go-version Check = %v", s, vs, got, want)
			}
		}
	}
}

func TestConstraintsAllowsNilAndZero(t *testing.T) {
	c := version.Must(version.NewVersion("1.0.0"))
	if mustParseConstraints(t, "1.0.0").Allows(nil) {
		t.Error("Allows(nil) = true")
	}
	var zero Constraints
	if !zero.Allows(c) {
		t.Error("zero Constraints refuse a release")
	}
	if zero.Allows(version.Must(version.NewVersion("1.0.0-rc1"))) {
		t.Error("zero Constraints allow a pre-release")
	}
	if zero.String() != "" {
		t.Errorf("zero String() = %q", zero.String())
	}
}

func mustParseConstraints(t *testing.T, s string) Constraints {
	t.Helper()
	c, err := ParseConstraints(s)
	if err != nil {
		t.Fatalf("ParseConstraints(%q): %v", s, err)
	}
	return c
}

func TestParseConstraintsErrors(t *testing.T) {
	for _, s := range []string{
		"", "  ", ",", ">= 1.0,", ", 1.0", "v1.0.0", "= v1.0.0", ">=v1", "V1.0", "1.*", "1.x", "1.2.X", "*",
		"=> 1.0", "=< 1.0", "^1.0", "~1.0", "== 1.0", ">", ">=", "latest", "1.2.3.4", "~> 1.2.3.4",
		">= 1.0 < 2.0", "1.0 || 2.0", "1.0.0-", "1.0.0+", "1.0.0-be$ta", "-1.0", "1..0",
		"99999999999999999999.0", "~> 9223372036854775807",
	} {
		t.Run(s, func(t *testing.T) {
			if c, err := ParseConstraints(s); !errors.Is(err, ErrInvalidConstraint) {
				t.Errorf("ParseConstraints(%q) = %v, %v; want ErrInvalidConstraint", s, c, err)
			}
		})
	}
}

func TestConstraintsString(t *testing.T) {
	for in, want := range map[string]string{
		">=5.80.0,<6.0.0":           ">= 5.80.0, < 6.0.0",
		" ~>  3.6 ":                 "~> 3.6",
		"1.2.3":                     "1.2.3",
		"= 1.2.3-beta.1+b7, != 1.0": "= 1.2.3-beta.1+b7, != 1.0",
		"1.2.0-rc.next":             "1.2.0-rc.next",
	} {
		if got := mustParseConstraints(t, in).String(); got != want {
			t.Errorf("ParseConstraints(%q).String() = %q; want %q", in, got, want)
		}
	}
}
