package scan

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/apparentlymart/go-versions/versions"
	"github.com/apparentlymart/go-versions/versions/constraints"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/lockfile"
)

// PlanEntry is one providers: or modules: item of a plan file that the
// findings need.
type PlanEntry struct {
	// Source is the provider or module registry address.
	Source string
	// Versions is a constraint in plan-file syntax.
	Versions string
	// Why lists where the need comes from ("main.tf:3", a lock file).
	Why []string
}

// PlanEntries returns one provider or module entry per source (a plan
// lists each source once) whose constraint covers what every root module
// found allows for it (its own and its local modules' constraints
// together, as OpenTofu applies them), every module call's constraint and
// every version locked for it: from the lowest lower bound to
// the highest upper bound among them, ">= 0.0.0" when one of them has no
// lower bound, open-ended when one has no upper bound. "!=" terms are
// ignored (the hull stays wider). Sources are sorted. A locked pre-release
// is covered by the bounds but, as OpenTofu's rules go, mirrored only when
// the constraint names it; such a version gets its own exact bound when it
// is the only one.
func (f *Findings) PlanEntries() (providers, modules []PlanEntry) {
	ph := map[string]*hull{}
	for _, root := range f.Roots() {
		reqs, err := f.RootRequirements(root)
		if err != nil {
			continue // reported as a problem when read
		}
		for a, c := range reqs {
			hullOf(ph, a).addConstraints(c, root)
		}
	}
	for _, l := range f.Locked {
		hullOf(ph, l.Address).addVersion(l.Version, l.File)
	}
	mh := map[string]*hull{}
	for _, m := range f.Modules {
		c, err := lockfile.ParseConstraints(m.Version)
		if strings.TrimSpace(m.Version) == "" {
			c, err = nil, nil
		}
		if err != nil {
			f.Problems = append(f.Problems, Problem{File: m.File, Line: m.Line, Message: fmt.Sprintf("module %s: %v", m.Addr, err)})
			continue
		}
		hullOf(mh, m.Addr.String()).addConstraints(c, m.File+":"+strconv.Itoa(m.Line))
	}
	return entries(ph), entries(mh)
}

// hull is the smallest range [lower, upper) holding everything added.
type hull struct {
	source       string
	lower, upper *versions.Version // nil: unbounded
	upperIncl    bool
	started      bool
	why          []string
}

func hullOf(m map[string]*hull, source string) *hull {
	if m[source] == nil {
		m[source] = &hull{source: source}
	}
	return m[source]
}

// addConstraints widens the hull to hold every version c allows.
func (h *hull) addConstraints(c lockfile.Constraints, why string) {
	lo, hi, incl := bounds(c)
	h.widen(lo, hi, incl, why)
}

func (h *hull) addVersion(v versions.Version, why string) {
	h.widen(&v, &v, true, why)
}

func (h *hull) widen(lo, hi *versions.Version, incl bool, why string) {
	if !slices.Contains(h.why, why) {
		h.why = append(h.why, why)
	}
	if !h.started {
		h.started, h.lower, h.upper, h.upperIncl = true, lo, hi, incl
		return
	}
	if h.lower != nil && (lo == nil || lo.LessThan(*h.lower)) {
		h.lower = lo
	}
	switch {
	case h.upper == nil:
	case hi == nil:
		h.upper = nil
	case h.upper.LessThan(*hi):
		h.upper, h.upperIncl = hi, incl
	case h.upper.Same(*hi):
		h.upperIncl = h.upperIncl || incl
	}
}

// bounds returns the lowest and highest version a constraint set allows:
// the greatest lower bound and the least upper bound of its terms.
func bounds(c lockfile.Constraints) (lo, hi *versions.Version, incl bool) {
	for _, s := range c {
		b := s.Boundary.ConstrainToZero()
		v := versions.Version{Major: b.Major.Num, Minor: b.Minor.Num, Patch: b.Patch.Num, Prerelease: versions.VersionExtra(b.Prerelease)}
		var l, u *versions.Version
		ui := false
		switch s.Operator {
		case constraints.OpGreaterThan, constraints.OpGreaterThanOrEqual:
			l = &v
		case constraints.OpEqual:
			l, u, ui = &v, &v, true
		case constraints.OpLessThan:
			u = &v
		case constraints.OpLessThanOrEqual:
			u, ui = &v, true
		case constraints.OpGreaterThanOrEqualPatchOnly: // ~> 1.2.3: < 1.3.0
			n := versions.Version{Major: v.Major, Minor: v.Minor + 1}
			l, u = &v, &n
		case constraints.OpGreaterThanOrEqualMinorOnly: // ~> 1.2: < 2.0.0
			n := versions.Version{Major: v.Major + 1}
			l, u = &v, &n
		}
		if l != nil && (lo == nil || lo.LessThan(*l)) {
			lo = l
		}
		if u != nil && (hi == nil || u.LessThan(*hi) || (u.Same(*hi) && !ui)) {
			hi, incl = u, ui
		}
	}
	return lo, hi, incl
}

// constraint renders the hull in plan-file syntax.
func (h *hull) constraint() string {
	lower := "0.0.0"
	if h.lower != nil {
		lower = h.lower.String()
	}
	switch {
	case h.upper == nil:
		return ">= " + lower
	case h.upperIncl && h.lower != nil && h.lower.Same(*h.upper):
		return h.upper.String()
	case h.upperIncl:
		return ">= " + lower + ", <= " + h.upper.String()
	default:
		return ">= " + lower + ", < " + h.upper.String()
	}
}

func entries(m map[string]*hull) []PlanEntry {
	var out []PlanEntry
	for _, h := range m {
		out = append(out, PlanEntry{Source: h.source, Versions: h.constraint(), Why: h.why})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Source < out[j].Source })
	return out
}

// WritePlan writes the entries in plan-file (YAML) syntax, each with a
// comment saying where it comes from, ready to paste under a plan's
// target: and platforms:.
func WritePlan(w io.Writer, providers, modules []PlanEntry) error {
	var b strings.Builder
	section := func(name string, entries []PlanEntry) {
		if len(entries) == 0 {
			fmt.Fprintf(&b, "%s: []\n", name)
			return
		}
		fmt.Fprintf(&b, "%s:\n", name)
		for _, e := range entries {
			fmt.Fprintf(&b, "  # %s\n  - source: %s\n    versions: %s\n", strings.Join(e.Why, ", "), e.Source, strconv.Quote(e.Versions))
		}
	}
	section("providers", providers)
	section("modules", modules)
	_, err := io.WriteString(w, b.String())
	return err
}
