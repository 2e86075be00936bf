package lockfile

import (
	"errors"
	"testing"

	"github.com/apparentlymart/go-versions/versions"
)

// TestConstraintsString: the normalised forms OpenTofu demands in lock
// files (its types.go VersionConstraintsString cases; the acceptance test
// compares the common ones with real tofu).
func TestConstraintsString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"~> 1.0", "~> 1.0"},
		{"~>1.0.0", "~> 1.0.0"},
		{">= 1.0, < 2", ">= 1.0.0, < 2.0.0"},
		{"< 2, >= 1.0", ">= 1.0.0, < 2.0.0"},
		{"1.2.3", "1.2.3"},
		{"=1.2.3", "1.2.3"},
		{">= 2.0, >= 2.0.0", ">= 2.0.0"},
		{"~> 1.2, ~> 1.2.0", "~> 1.2.0, ~> 1.2"},
		{"!= 1.0.1, >= 1.0.0", ">= 1.0.0, != 1.0.1"},
		{"1.0.0-beta.1", "1.0.0-beta.1"},
		{"~> 2", "~> 2.0"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			c, err := ParseConstraints(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := ConstraintsString(c); got != tt.want {
				t.Fatalf("ConstraintsString(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	if _, err := ParseConstraints("~> 1.x"); !errors.Is(err, ErrConstraint) {
		t.Fatalf("~> 1.x: err = %v, want ErrConstraint", err)
	}
}

// TestSelect: keep the locked version while allowed; else (or upgrading)
// the newest allowed; pre-releases only when named exactly.
func TestSelect(t *testing.T) {
	held := versions.List{versions.MustParseVersion("2.0.0-rc.1"), versions.MustParseVersion("1.1.0"), versions.MustParseVersion("1.0.0")}
	lock := func(v string) *Provider { return &Provider{Version: versions.MustParseVersion(v)} }
	tests := []struct {
		name, cons string
		locked     *Provider
		upgrade    bool
		want       string
		err        error
	}{
		{name: "newest allowed", cons: "~> 1.0", want: "1.1.0"},
		{name: "no pre-release unless named", cons: ">= 1.0.0", want: "1.1.0"},
		{name: "pre-release named", cons: "2.0.0-rc.1", want: "2.0.0-rc.1"},
		{name: "locked kept", cons: "~> 1.0", locked: lock("1.0.0"), want: "1.0.0"},
		{name: "upgrade moves", cons: "~> 1.0", locked: lock("1.0.0"), upgrade: true, want: "1.1.0"},
		{name: "locked no longer allowed", cons: ">= 1.1.0", locked: lock("1.0.0"), want: "1.1.0"},
		{name: "locked missing from mirror", cons: "~> 1.0", locked: lock("1.0.5"), err: ErrUnsatisfiable},
		{name: "nothing allowed", cons: "~> 3.0", err: ErrUnsatisfiable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseConstraints(tt.cons)
			if err != nil {
				t.Fatal(err)
			}
			v, err := Select("registry.opentofu.org/a/b", c, tt.locked, held, tt.upgrade)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil || v.String() != tt.want {
				t.Fatalf("Select = %s, %v; want %s", v, err, tt.want)
			}
		})
	}
}
