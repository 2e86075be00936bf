package scan

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/lockfile"
)

// PlanEntry is one providers: or modules: item of a plan file that the
// findings need.
type PlanEntry struct {
	// Source is the provider or module registry address.
	Source string
	// Versions is a constraint in plan-file syntax.
	Versions string
	// Why says where the need comes from ("main.tf:3", "lock file").
	Why []string
}

// PlanEntries returns the provider and module entries that would mirror
// everything found: one entry per distinct constraint written for a
// source (normalised, so "~> 1.0" and "~>1.0" are one), one ">= 0.0.0"
// entry for a source required without a constraint (OpenTofu takes the
// newest release then, which only a mirror of all can promise), and one
// "= VERSION" entry per locked version no other entry allows, so the
// constraints cover every locked version. Sources are sorted.
func (f *Findings) PlanEntries() (providers, modules []PlanEntry) {
	byProvider := map[string]map[string]*PlanEntry{}
	add := func(m map[string]map[string]*PlanEntry, source, versions, why string) {
		if m[source] == nil {
			m[source] = map[string]*PlanEntry{}
		}
		e := m[source][versions]
		if e == nil {
			e = &PlanEntry{Source: source, Versions: versions}
			m[source][versions] = e
		}
		if !slices.Contains(e.Why, why) {
			e.Why = append(e.Why, why)
		}
	}
	for _, r := range f.Providers {
		v := ">= 0.0.0"
		if r.Constraints != "" {
			c, err := lockfile.ParseConstraints(r.Constraints)
			if err != nil {
				continue // reported as a problem when read
			}
			v = lockfile.ConstraintsString(c)
		}
		add(byProvider, r.Address, v, r.File+":"+strconv.Itoa(r.Line))
	}
	for _, l := range f.Locked {
		covered := false
		for v := range byProvider[l.Address] {
			if c, err := lockfile.ParseConstraints(v); err == nil && lockfile.Allowed(c).Has(l.Version) {
				covered = true
				break
			}
		}
		if !covered {
			add(byProvider, l.Address, l.Version.String(), l.File)
		}
	}
	byModule := map[string]map[string]*PlanEntry{}
	for _, m := range f.Modules {
		v := strings.Join(strings.Fields(m.Version), " ")
		if v == "" {
			v = ">= 0.0.0"
		}
		add(byModule, m.Addr.String(), v, m.File+":"+strconv.Itoa(m.Line))
	}
	return flatten(byProvider), flatten(byModule)
}

func flatten(m map[string]map[string]*PlanEntry) []PlanEntry {
	var out []PlanEntry
	for _, byVersions := range m {
		for _, e := range byVersions {
			out = append(out, *e)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Source != out[j].Source {
			return out[i].Source < out[j].Source
		}
		return out[i].Versions < out[j].Versions
	})
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
