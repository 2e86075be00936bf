package scan

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/apparentlymart/go-versions/versions"
	goversion "github.com/hashicorp/go-version"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/lockfile"
)

// Repositories renders the target repository of a provider address
// ("hostname/namespace/type") and of a module address.
type Repositories struct {
	Provider func(address string) (string, error)
	Module   func(addr config.ModuleAddr) (string, error)
}

// Missing is one thing the codebase needs that the mirror lacks.
type Missing struct {
	// Kind is "provider" or "module".
	Kind, Source string
	// Version is the missing version, or the constraint no held version
	// meets.
	Version string
	// Platforms are missing for a locked version (its lock file has hashes
	// for them); empty when the whole version is missing.
	Platforms []string
	// Why says where the need comes from.
	Why string
	// Detail explains, e.g. which versions the mirror holds.
	Detail string
}

// String renders the item on one line.
func (m Missing) String() string {
	s := m.Kind + " " + m.Source + " " + m.Version
	if len(m.Platforms) > 0 {
		s += " platforms " + strings.Join(m.Platforms, ", ")
	}
	return s + " (" + m.Why + "): " + m.Detail
}

// Check compares the findings with the target: each locked provider
// version must be held, with every platform its lock file has a zh: hash
// for (read from the stored signed SHA256SUMS, or, without one, matched
// against the zips held); in each root module whose lock file does not
// pin a provider, its requirements (with its local modules') must be met
// by a held version; each registry
// module call must be met by a held module version. Nothing is
// downloaded but manifests and provenance. A target that cannot be read
// is an error; what is absent is in the list.
func Check(ctx context.Context, t lockfile.Target, f *Findings, repos Repositories) ([]Missing, error) {
	c := &checker{t: t, repos: repos, held: map[string]versions.List{}, tags: map[string]map[string]string{}}
	var out []Missing
	lockedIn := map[string]bool{} // dir + "\x00" + address
	for _, l := range f.Locked {
		lockedIn[l.Dir+"\x00"+l.Address] = true
		m, err := c.locked(ctx, l)
		if err != nil {
			return nil, err
		}
		out = append(out, m...)
	}
	for _, root := range f.Roots() {
		reqs, err := f.RootRequirements(root)
		if err != nil {
			continue // reported as a problem when read
		}
		for _, a := range slices.Sorted(maps.Keys(reqs)) {
			if lockedIn[root+"\x00"+a] {
				continue
			}
			m, err := c.requirement(ctx, a, reqs[a], root)
			if err != nil {
				return nil, err
			}
			out = append(out, m...)
		}
	}
	for _, mc := range f.Modules {
		m, err := c.module(ctx, mc)
		if err != nil {
			return nil, err
		}
		out = append(out, m...)
	}
	return dedupe(out), nil
}

type checker struct {
	t     lockfile.Target
	repos Repositories
	held  map[string]versions.List
	tags  map[string]map[string]string
}

func (c *checker) versionsOf(ctx context.Context, address string) (string, versions.List, map[string]string, error) {
	repo, err := c.repos.Provider(address)
	if err != nil {
		return "", nil, nil, fmt.Errorf("provider %s: %w", address, err)
	}
	if held, ok := c.held[repo]; ok {
		return repo, held, c.tags[repo], nil
	}
	held, tags, err := lockfile.HeldVersions(ctx, c.t, repo)
	if err != nil {
		return "", nil, nil, err
	}
	c.held[repo], c.tags[repo] = held, tags
	return repo, held, tags, nil
}

func (c *checker) locked(ctx context.Context, l LockedProvider) ([]Missing, error) {
	repo, held, tags, err := c.versionsOf(ctx, l.Address)
	if err != nil {
		return nil, err
	}
	miss := Missing{Kind: "provider", Source: l.Address, Version: l.Version.String(), Why: "locked in " + l.File}
	tag, ok := tags[l.Version.String()]
	if !ok {
		miss.Detail = "not in the mirror, which holds " + listOrNone(held)
		return []Missing{miss}, nil
	}
	rel, err := lockfile.ReadRelease(ctx, c.t, repo, l.Address, tag)
	if err != nil {
		miss.Detail = err.Error()
		return []Missing{miss}, nil
	}
	var want []string
	if rel.Provenance != nil {
		byHash := map[string]string{}
		for name, sum := range rel.Provenance.Sums {
			byHash["zh:"+sum] = name
		}
		for _, h := range l.Hashes {
			if p, ok := platformOf(byHash[h], l.Version.String()); ok {
				want = append(want, p)
			}
		}
	} else {
		// Without the signed list, a zh: hash names no platform: match it
		// against the zips the mirror holds.
		heldZH := map[string]bool{}
		for p := range rel.Platforms {
			layer, err := rel.PackageLayer(ctx, c.t, p)
			if err == nil {
				heldZH["zh:"+layer.Digest.Encoded()] = true
			}
		}
		var unknown []string
		for _, h := range l.Hashes {
			if strings.HasPrefix(h, "zh:") && !heldZH[h] {
				unknown = append(unknown, h)
			}
		}
		if len(unknown) > 0 {
			miss.Detail = fmt.Sprintf("no provenance, and the mirror holds no zip for %d locked hash(es) (%s): some platform is missing", len(unknown), strings.Join(unknown, ", "))
			return []Missing{miss}, nil
		}
	}
	var lacking []string
	for _, p := range slices.Compact(slices.Sorted(slices.Values(want))) {
		if _, ok := rel.Platforms[p]; !ok {
			lacking = append(lacking, p)
		}
	}
	if len(lacking) == 0 {
		return nil, nil
	}
	miss.Platforms = lacking
	miss.Detail = "the lock file has hashes for them; the mirror holds " + strings.Join(slices.Sorted(maps.Keys(rel.Platforms)), ", ")
	return []Missing{miss}, nil
}

// platformOf reads the platform from a release file name
// terraform-provider-<type>_<version>_<os>_<arch>.zip.
func platformOf(name, version string) (string, bool) {
	rest, ok := strings.CutSuffix(name, ".zip")
	if !ok {
		return "", false
	}
	_, plat, ok := strings.Cut(rest, "_"+version+"_")
	if !ok || strings.Count(plat, "_") != 1 {
		return "", false
	}
	return plat, true
}

func (c *checker) requirement(ctx context.Context, address string, cons lockfile.Constraints, root string) ([]Missing, error) {
	_, held, _, err := c.versionsOf(ctx, address)
	if err != nil {
		return nil, err
	}
	if held.NewestInSet(lockfile.Allowed(cons)) != versions.Unspecified {
		return nil, nil
	}
	shown := lockfile.ConstraintsString(cons)
	if shown == "" {
		shown = "any version"
	}
	return []Missing{{Kind: "provider", Source: address, Version: shown, Why: "required in " + root,
		Detail: "no version in the mirror meets it; it holds " + listOrNone(held)}}, nil
}

func (c *checker) module(ctx context.Context, mc ModuleCall) ([]Missing, error) {
	repo, err := c.repos.Module(mc.Addr)
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", mc.Addr, err)
	}
	tags, err := c.t.Tags(ctx, repo)
	if err != nil {
		return nil, fmt.Errorf("%w: listing tags of %s: %w", lockfile.ErrTarget, repo, err)
	}
	var cons config.Constraints
	if strings.TrimSpace(mc.Version) != "" {
		if cons, err = config.ParseConstraints(mc.Version); err != nil {
			return []Missing{{Kind: "module", Source: mc.Addr.String(), Version: mc.Version, Why: mc.File + ":" + strconv.Itoa(mc.Line), Detail: err.Error()}}, nil
		}
	}
	var held []string
	for _, tag := range tags {
		s := strings.TrimPrefix(manifest.VersionFromTag(tag), "v")
		v, err := goversion.NewSemver(s)
		if err != nil || strings.Count(strings.SplitN(strings.SplitN(s, "+", 2)[0], "-", 2)[0], ".") != 2 {
			continue
		}
		held = append(held, s)
		if cons.Allows(v) {
			return nil, nil
		}
	}
	sort.Strings(held)
	want := mc.Version
	if strings.TrimSpace(want) == "" {
		want = "any version"
	}
	return []Missing{{Kind: "module", Source: mc.Addr.String(), Version: want, Why: mc.File + ":" + strconv.Itoa(mc.Line),
		Detail: "no version in the mirror (" + repo + ") meets it; it holds " + heldOrNone(held)}}, nil
}

func heldOrNone(held []string) string {
	if len(held) == 0 {
		return "none"
	}
	return strings.Join(held, ", ")
}

func listOrNone(l versions.List) string {
	if len(l) == 0 {
		return "none"
	}
	s := make([]string, len(l))
	for i, v := range l {
		s[i] = v.String()
	}
	return strings.Join(s, ", ")
}

// dedupe drops repeats (two lock files pinning the same missing version
// stay two lines only when their files differ).
func dedupe(in []Missing) []Missing {
	seen := map[string]bool{}
	var out []Missing
	for _, m := range in {
		if k := m.String(); !seen[k] {
			seen[k] = true
			out = append(out, m)
		}
	}
	return out
}
