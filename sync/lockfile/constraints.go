package lockfile

import (
	"fmt"
	"sort"
	"strings"

	"github.com/apparentlymart/go-versions/versions"
	"github.com/apparentlymart/go-versions/versions/constraints"
)

// Constraints is a provider version constraint set as OpenTofu holds it:
// the terms of every "version" argument for the provider, all of which must
// hold. Nil or empty means any released version.
type Constraints = constraints.IntersectionSpec

// ParseConstraints parses a provider "version" argument with OpenTofu's
// rules (Ruby-style, comma-separated: constraints.ParseRubyStyleMulti).
func ParseConstraints(s string) (Constraints, error) {
	c, err := constraints.ParseRubyStyleMulti(s)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrConstraint, s, err)
	}
	return c, nil
}

// ConstraintsString renders constraints in the normalised form OpenTofu
// writes to (and demands in) a lock file's "constraints": duplicates
// dropped (after reading omitted version parts as zero), sorted by boundary
// then operator, terms joined by ", ", "~> X.Y" kept to two parts when it
// was written so. Empty constraints render as "".
func ConstraintsString(c Constraints) string {
	seen := map[constraints.SelectionSpec]bool{}
	var sels []constraints.SelectionSpec
	for _, s := range c {
		n := constraints.SelectionSpec{Operator: s.Operator, Boundary: s.Boundary.ConstrainToZero()}
		if !seen[n] {
			seen[n] = true
			sels = append(sels, n)
		}
	}
	sort.SliceStable(sels, func(i, j int) bool {
		if c := compareBoundary(sels[i].Boundary, sels[j].Boundary); c != 0 {
			return c < 0
		}
		return operatorRank[sels[i].Operator] < operatorRank[sels[j].Operator]
	})
	terms := make([]string, len(sels))
	for i, s := range sels {
		b := s.Boundary
		v := fmt.Sprintf("%s.%s.%s", b.Major, b.Minor, b.Patch)
		if s.Operator == constraints.OpGreaterThanOrEqualMinorOnly {
			v = fmt.Sprintf("%s.%s", b.Major, b.Minor)
		}
		if b.Prerelease != "" {
			v += "-" + b.Prerelease
		}
		if b.Metadata != "" {
			v += "+" + b.Metadata
		}
		terms[i] = operatorText[s.Operator] + v
	}
	return strings.Join(terms, ", ")
}

// operatorText is how each operator is written before the version.
var operatorText = map[constraints.SelectionOp]string{
	constraints.OpGreaterThan:                 "> ",
	constraints.OpLessThan:                    "< ",
	constraints.OpGreaterThanOrEqual:          ">= ",
	constraints.OpGreaterThanOrEqualPatchOnly: "~> ",
	constraints.OpGreaterThanOrEqualMinorOnly: "~> ",
	constraints.OpLessThanOrEqual:             "<= ",
	constraints.OpEqual:                       "",
	constraints.OpNotEqual:                    "!= ",
}

// operatorRank orders terms of equal boundary: lower bounds first, as
// OpenTofu does.
var operatorRank = map[constraints.SelectionOp]int{
	constraints.OpGreaterThan:                 1,
	constraints.OpGreaterThanOrEqual:          2,
	constraints.OpEqual:                       3,
	constraints.OpGreaterThanOrEqualPatchOnly: 4,
	constraints.OpGreaterThanOrEqualMinorOnly: 5,
	constraints.OpLessThanOrEqual:             6,
	constraints.OpLessThan:                    7,
	constraints.OpNotEqual:                    8,
}

// compareBoundary orders two boundaries by version precedence, then by
// build metadata (which precedence ignores) so the order is total.
func compareBoundary(a, b constraints.VersionSpec) int {
	av, bv := specVersion(a), specVersion(b)
	switch {
	case av.Same(bv):
		return strings.Compare(av.Metadata.Raw(), bv.Metadata.Raw())
	case av.LessThan(bv):
		return -1
	default:
		return 1
	}
}

func specVersion(s constraints.VersionSpec) versions.Version {
	s = s.ConstrainToZero()
	return versions.Version{
		Major: s.Major.Num, Minor: s.Minor.Num, Patch: s.Patch.Num,
		Prerelease: versions.VersionExtra(s.Prerelease), Metadata: versions.VersionExtra(s.Metadata),
	}
}

// Allowed is the set of versions constraints allow, as OpenTofu computes
// it: released versions meeting them, plus a pre-release only when named
// exactly.
func Allowed(c Constraints) versions.Set {
	return versions.MeetingConstraints(c)
}
