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

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/lockfile"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/provenance"
)

// Repositories renders the target repository of a provider address
// ("hostname/namespace/type") and of a module address.
type Repositories struct {
	// Provider renders a provider's repository; required.
	Provider func(address string) (string, error)
	// Module renders a module's repository; required.
	Module func(addr config.ModuleAddr) (string, error)
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
// version must be held, with a package for every platform its lock file
// has an h1: hash for (or for each of opts.Platforms); in each root module whose lock file does not
// pin a provider, its requirements (with its local modules') must be met
// by a held version; each registry
// module call must be met by a held module version. Packages are
// downloaded (and hashed) only for a locked version whose signed
// SHA256SUMS releases a platform the mirror lacks, to tell whether the
// lock needs it. A target that cannot be read
// is an error; what is absent is in the list.
func Check(ctx context.Context, t lockfile.Target, f *Findings, repos Repositories, opts CheckOptions) ([]Missing, error) {
	c := &checker{t: t, repos: repos, opts: opts, held: map[string]versions.List{}, tags: map[string]map[string]string{}, h1: map[string]string{}}
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

// CheckOptions configures [Check].
type CheckOptions struct {
	// Platforms, when set, are the OS_ARCH platforms every locked version
	// must be held for (read from the indexes, nothing downloaded); empty
	// means the platforms the lock files' h1: hashes were made on.
	Platforms []string
	// SpoolDir holds a zip while it is hashed; "" is the system default.
	SpoolDir string
	// Policy decides which keys may vouch for a stored SHA256SUMS (see
	// [lockfile.ReadRelease]); the zero value trusts none.
	Policy provenance.Policy
}

type checker struct {
	t     lockfile.Target
	repos Repositories
	opts  CheckOptions
	h1    map[string]string // zip digest -> h1:
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
		miss.Detail = "not in the mirror, which holds " + lockfile.VersionsString(held)
		return []Missing{miss}, nil
	}
	rel, err := lockfile.ReadRelease(ctx, c.t, c.opts.Policy, repo, l.Address, tag)
	if err != nil {
		miss.Detail = err.Error()
		return []Missing{miss}, nil
	}
	if len(c.opts.Platforms) > 0 {
		for _, p := range c.opts.Platforms {
			if _, ok := rel.Platforms[p]; !ok {
				miss.Platforms = append(miss.Platforms, p)
			}
		}
		if len(miss.Platforms) == 0 {
			return nil, nil
		}
		miss.Detail = "not in the index; the mirror holds " + strings.Join(slices.Sorted(maps.Keys(rel.Platforms)), ", ")
		return []Missing{miss}, nil
	}
	return c.lockedPlatforms(ctx, l, rel, miss)
}

// lockedPlatforms checks that every h1: hash of a lock entry (one per
// platform `tofu init` or `providers lock` unpacked) is a package the
// mirror holds. When the signed SHA256SUMS shows every released platform
// held, nothing can be missing and nothing is downloaded; otherwise each
// held package is downloaded and hashed once.
func (c *checker) lockedPlatforms(ctx context.Context, l LockedProvider, rel *lockfile.Release, miss Missing) ([]Missing, error) {
	var h1s []string
	for _, h := range l.Hashes {
		if strings.HasPrefix(h, "h1:") {
			h1s = append(h1s, h)
		}
	}
	if len(h1s) == 0 {
		return nil, nil // zh: only: they name no platform a team unpacked
	}
	var lacking []string
	if rel.Provenance != nil {
		for name := range rel.Provenance.Sums {
			if p, ok := platformOf(name, l.Version.String()); ok {
				if _, held := rel.Platforms[p]; !held && !slices.Contains(lacking, p) {
					lacking = append(lacking, p)
				}
			}
		}
		if len(lacking) == 0 {
			return nil, nil
		}
		slices.Sort(lacking)
	}
	heldH1 := map[string]bool{}
	for _, p := range slices.Sorted(maps.Keys(rel.Platforms)) {
		h, err := c.hash(ctx, rel, p)
		if err != nil {
			miss.Platforms, miss.Detail = []string{p}, err.Error()
			return []Missing{miss}, nil
		}
		heldH1[h] = true
	}
	var unmatched []string
	for _, h := range h1s {
		if !heldH1[h] {
			unmatched = append(unmatched, h)
		}
	}
	if len(unmatched) == 0 {
		return nil, nil
	}
	miss.Platforms = lacking
	miss.Detail = fmt.Sprintf("%d locked h1: hash(es) match no package the mirror holds (it holds %s)", len(unmatched), strings.Join(slices.Sorted(maps.Keys(rel.Platforms)), ", "))
	if len(lacking) > 0 {
		miss.Detail += "; upstream released " + strings.Join(lacking, ", ") + ", which it lacks"
	}
	return []Missing{miss}, nil
}

// hash returns the h1: hash of one held package, downloading it once.
func (c *checker) hash(ctx context.Context, rel *lockfile.Release, platform string) (string, error) {
	layer, err := rel.PackageLayer(ctx, c.t, platform)
	if err != nil {
		return "", err
	}
	if h, ok := c.h1[layer.Digest.String()]; ok {
		return h, nil
	}
	rc, err := c.t.Blob(ctx, rel.Repository, layer)
	if err != nil {
		return "", fmt.Errorf("%w: reading %s in %s: %w", lockfile.ErrTarget, layer.Digest, rel.Repository, err)
	}
	defer rc.Close()
	h, err := lockfile.HashPackage(rc, c.opts.SpoolDir, lockfile.Limits{})
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", rel.Address, platform, err)
	}
	c.h1[layer.Digest.String()] = h.H1
	return h.H1, nil
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
		Detail: "no version in the mirror meets it; it holds " + lockfile.VersionsString(held)}}, nil
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
		if cons, err = config.ParseModuleConstraints(mc.Version); err != nil {
			return []Missing{{Kind: "module", Source: mc.Addr.String(), Version: mc.Version, Why: mc.File + ":" + strconv.Itoa(mc.Line), Detail: err.Error()}}, nil
		}
	}
	var held []string
	for _, tag := range tags {
		s := strings.TrimPrefix(manifest.VersionFromTag(tag), "v")
		if !manifest.IsStrictVersion(s) {
			continue // "latest", sha256-<hex> referrer tags
		}
		held = append(held, s)
		if cons.Allows(s) {
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
