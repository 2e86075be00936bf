package config

import (
	"slices"

	version "github.com/hashicorp/go-version"
)

// Selection is the one version-selection rule of a plan entry: the
// versions meeting its constraint and, when Newest is set, only the Newest
// highest of those. Planning (against upstream's version list), verify
// (against the target's tags) and import (against a bundle's artifacts)
// all select through it, so they agree on what the plan wants. The zero
// value allows every release and keeps all of them.
type Selection struct {
	// Constraints must hold for a version to be selected.
	Constraints Constraints
	// Newest keeps only that many of the highest versions meeting
	// Constraints; 0 keeps all.
	Newest int
}

// Selection returns the entry's version-selection rule.
func (p Provider) Selection() Selection {
	return Selection{Constraints: p.Constraints, Newest: p.Newest}
}

// Selection returns the entry's version-selection rule.
func (m Module) Selection() Selection {
	return Selection{Constraints: m.Constraints, Newest: m.Newest}
}

// Select returns the versions of vs the rule selects, ascending and
// without duplicates (versions equal by precedence, 1.0 and 1.0.0, count
// once, unless their build metadata differs; the first one given is
// kept). vs is not modified; nil entries are
// ignored.
func (s Selection) Select(vs []*version.Version) []*version.Version {
	var out []*version.Version
	for _, v := range vs {
		if v != nil && s.Constraints.Allows(v.Original()) {
			out = append(out, v)
		}
	}
	slices.SortStableFunc(out, func(a, b *version.Version) int { return a.Compare(b) })
	// Equal by precedence is not the same release when the build
	// metadata differs: 1.1.0 and 1.1.0+build.5 are two versions OpenTofu
	// can select; "v1.0.0" and "1.0.0" of a module are one.
	out = slices.CompactFunc(out, func(a, b *version.Version) bool { return a.Equal(b) && a.Metadata() == b.Metadata() })
	if s.Newest > 0 && len(out) > s.Newest {
		out = out[len(out)-s.Newest:]
	}
	return out
}

// Keeps reports whether the rule selects v when the versions known are
// all (v among them or not): v meets the constraint and, with Newest set,
// fewer than Newest known versions selected by the constraint are higher.
func (s Selection) Keeps(v *version.Version, all []*version.Version) bool {
	if v == nil || !s.Constraints.Allows(v.Original()) {
		return false
	}
	if s.Newest <= 0 {
		return true
	}
	kept := s.Select(append(slices.Clone(all), v))
	return !v.LessThan(kept[0])
}
