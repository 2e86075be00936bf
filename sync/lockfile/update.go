package lockfile

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/apparentlymart/go-versions/versions"
	"golang.org/x/sync/errgroup"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/provenance"
)

// Options configures [Update].
type Options struct {
	// Platforms are the OS_ARCH platforms to hash; empty means every
	// platform the mirror holds for the selected version.
	Platforms []string
	// Upgrade selects the newest allowed version even when the locked one
	// is still allowed, as `tofu init -upgrade` does.
	Upgrade bool
	// Repository renders a provider's repository in the target from its
	// address; required.
	Repository func(address string) (string, error)
	// SpoolDir holds each zip while it is hashed; "" means the system's
	// temporary directory.
	SpoolDir string
	// Limits bounds unpacking; zero fields mean [DefaultLimits].
	Limits Limits
	// Concurrency bounds the zips downloaded and hashed at once for one
	// provider version; 0 means 4.
	Concurrency int
	// Policy decides which keys may vouch for a stored SHA256SUMS when it
	// is verified again (see [ReadRelease]). The zero value trusts no key:
	// every signed provenance is then refused.
	Policy provenance.Policy
}

// Change says what [Update] did to one provider.
type Change struct {
	// Address is the provider's "hostname/namespace/type".
	Address string
	// Old is the previously locked version, "" when the provider is new.
	Old, New string
	// Platforms were hashed (h1:) for New.
	Platforms []string
	// Signed is true when the zh: hashes come from a SHA256SUMS whose
	// signature verified (not one the policy let through unsigned).
	Signed bool
}

// Result is what [Update] produced.
type Result struct {
	// File is the updated lock file.
	File *File
	// Changes, one per provider handled, in address order.
	Changes []Change
	// Warnings for the user (no provenance, expired keys, a locked-only
	// provider the mirror lacks).
	Warnings []string
}

// Update returns old updated from the mirror for the providers in reqs
// (address to the configuration's merged constraints) and those already in
// old. Versions are selected as OpenTofu selects them: the locked version
// while it meets the constraints (unless opts.Upgrade), else the newest
// version the target holds that meets them. Hashes are h1: for every
// platform hashed and zh: for every line of the stored, re-verified signed
// SHA256SUMS; without a provenance, zh: for the zips hashed, with a
// warning. When the version is kept, hashes already recorded stay (as
// `tofu providers lock` keeps them). A provider in old but not in reqs
// keeps its version and constraints; if the mirror lacks it, its block is
// left as it was, with a warning. Per-provider failures are joined; the
// result is nil then.
//
// Costs per provider: one tag list, then [ReadRelease], then per platform
// one manifest GET and one download of its zip.
func Update(ctx context.Context, t Target, old *File, reqs map[string]Constraints, opts Options) (*Result, error) {
	if old == nil {
		old = &File{}
	}
	res := &Result{File: &File{Providers: map[string]*Provider{}}}
	maps.Copy(res.File.Providers, old.Providers)
	addrs := slices.Collect(maps.Keys(reqs))
	for a := range old.Providers {
		if _, ok := reqs[a]; !ok {
			addrs = append(addrs, a)
		}
	}
	slices.Sort(addrs)
	var errs []error
	for _, a := range addrs {
		cons, required := reqs[a]
		locked := old.Providers[a]
		if !required {
			cons = locked.Constraints
		}
		p, ch, warns, err := updateOne(ctx, t, a, cons, locked, required, opts)
		res.Warnings = append(res.Warnings, warns...)
		switch {
		case err != nil && !required:
			res.Warnings = append(res.Warnings, fmt.Sprintf("provider %s (only in the lock file) left as it was: %v", a, err))
		case err != nil:
			errs = append(errs, err)
		default:
			res.File.Providers[a] = p
			res.Changes = append(res.Changes, ch)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return res, nil
}

// updateOne selects, reads and hashes one provider.
func updateOne(ctx context.Context, t Target, addr string, cons Constraints, locked *Provider, required bool, opts Options) (*Provider, Change, []string, error) {
	ch := Change{Address: addr}
	repo, err := opts.Repository(addr)
	if err != nil {
		return nil, ch, nil, fmt.Errorf("provider %s: %w", addr, err)
	}
	held, tags, err := HeldVersions(ctx, t, repo)
	if err != nil {
		return nil, ch, nil, fmt.Errorf("provider %s: %w", addr, err)
	}
	upgrade := opts.Upgrade && required
	v, err := Select(addr, cons, locked, held, upgrade)
	if err != nil {
		return nil, ch, nil, err
	}
	if locked != nil {
		ch.Old = locked.Version.String()
	}
	ch.New = v.String()
	rel, err := ReadRelease(ctx, t, opts.Policy, repo, addr, tags[v.String()])
	if err != nil {
		return nil, ch, nil, err
	}
	platforms := opts.Platforms
	if len(platforms) == 0 {
		platforms = slices.Sorted(maps.Keys(rel.Platforms))
	}
	var missing []string
	for _, p := range platforms {
		if _, ok := rel.Platforms[p]; !ok {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return nil, ch, nil, fmt.Errorf("%w: provider %s %s: the mirror holds no package for %s (it has %s)", ErrMissingPlatform, addr, v, strings.Join(missing, ", "), strings.Join(slices.Sorted(maps.Keys(rel.Platforms)), ", "))
	}
	var hashes, warns []string
	if locked != nil && locked.Version.Same(v) {
		hashes = append(hashes, locked.Hashes...)
	}
	hashed, err := hashPlatforms(ctx, t, rel, platforms, opts)
	if err != nil {
		return nil, ch, nil, err
	}
	for _, h := range hashed {
		hashes = append(hashes, h.H1)
		if rel.Provenance == nil {
			hashes = append(hashes, h.ZH)
		}
	}
	if rel.Provenance != nil {
		ch.Signed = !rel.Provenance.Unsigned()
		for _, sum := range rel.Provenance.Sums {
			hashes = append(hashes, "zh:"+sum)
		}
		for _, w := range rel.Provenance.Warnings {
			warns = append(warns, fmt.Sprintf("provider %s %s: %s", addr, v, w))
		}
	} else {
		warns = append(warns, fmt.Sprintf("provider %s %s: no provenance (signed SHA256SUMS) in the mirror: zh: hashes only for the %d zip(s) it holds, and these are not signed", addr, v, len(platforms)))
	}
	ch.Platforms = platforms
	return &Provider{Address: addr, Version: v, Constraints: cons, Hashes: sortedUnique(hashes)}, ch, warns, nil
}

// Select picks the version as OpenTofu does: the locked version while the
// constraints allow it (and upgrade is false), else the newest held
// version they allow. A locked version the mirror lacks, and constraints
// no held version meets, are errors wrapping [ErrUnsatisfiable] that name
// the provider, its constraints and the versions held.
func Select(addr string, cons Constraints, locked *Provider, held versions.List, upgrade bool) (versions.Version, error) {
	allowed := Allowed(cons)
	shown := ConstraintsString(cons)
	if shown == "" {
		shown = "any version"
	}
	if locked != nil && !upgrade && allowed.Has(locked.Version) {
		if !slices.ContainsFunc(held, locked.Version.Same) {
			return versions.Unspecified, fmt.Errorf("%w: provider %s: locked version %s (constraints %s) is not in the mirror, which holds %s; mirror it, or run with -upgrade", ErrUnsatisfiable, addr, locked.Version, shown, VersionsString(held))
		}
		return locked.Version, nil
	}
	v := held.NewestInSet(allowed)
	if v == versions.Unspecified {
		return v, fmt.Errorf("%w: provider %s: no version in the mirror meets %s; it holds %s", ErrUnsatisfiable, addr, shown, VersionsString(held))
	}
	return v, nil
}

// VersionsString lists versions as "1.1.0, 1.0.0", or "none".
func VersionsString(held versions.List) string {
	if len(held) == 0 {
		return "none"
	}
	s := make([]string, len(held))
	for i, v := range held {
		s[i] = v.String()
	}
	return strings.Join(s, ", ")
}

// hashPlatforms hashes each platform's zip, opts.Concurrency at a time;
// the first failure cancels the others.
func hashPlatforms(ctx context.Context, t Target, rel *Release, platforms []string, opts Options) ([]PackageHashes, error) {
	n := opts.Concurrency
	if n <= 0 {
		n = 4
	}
	out := make([]PackageHashes, len(platforms))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(n)
	for i, p := range platforms {
		g.Go(func() error {
			h, err := hashPlatform(ctx, t, rel, p, opts)
			out[i] = h
			return err
		})
	}
	return out, g.Wait()
}

// hashPlatform downloads one platform's zip from the mirror and hashes it.
func hashPlatform(ctx context.Context, t Target, rel *Release, platform string, opts Options) (PackageHashes, error) {
	layer, err := rel.PackageLayer(ctx, t, platform)
	if err != nil {
		return PackageHashes{}, err
	}
	what := fmt.Sprintf("provider %s %s %s", rel.Address, manifest.VersionFromTag(rel.Tag), platform)
	rc, err := t.Blob(ctx, rel.Repository, layer)
	if err != nil {
		return PackageHashes{}, fmt.Errorf("%w: %s: reading zip %s: %w", ErrTarget, what, layer.Digest, err)
	}
	defer rc.Close()
	h, err := HashPackage(rc, opts.SpoolDir, opts.Limits)
	if err != nil {
		return PackageHashes{}, fmt.Errorf("%s: zip %s: %w", what, layer.Digest, err)
	}
	if h.ZH != "zh:"+layer.Digest.Encoded() {
		return PackageHashes{}, fmt.Errorf("%w: %s: zip %s hashes to %s", ErrTarget, what, layer.Digest, h.ZH)
	}
	return h, nil
}
