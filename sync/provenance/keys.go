package provenance

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/atomicfile"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/upstream"
)

// KeySource is what [ExportKeys] asks upstream: the upstream client.
type KeySource interface {
	ProviderVersions(ctx context.Context, a config.ProviderAddr) (*upstream.ProviderVersions, error)
	ProviderDownload(ctx context.Context, a config.ProviderAddr, version string, p config.Platform) (*upstream.ProviderPackage, error)
}

// ExportedKey is one key [ExportKeys] wrote.
type ExportedKey struct {
	Namespace string `json:"namespace"`
	KeyID     string `json:"key_id"`
	// File is the path written, under the directory given.
	File string `json:"file"`
	// Providers are the plan's providers whose releases it signs.
	Providers []string `json:"providers"`
}

// ExportKeys writes, in the trust.provider_keys layout
// (<dir>/<namespace>/<KEY ID>.asc), every signing key upstream serves for
// the versions the plan selects of each provider, for an operator to
// review and carry across the air gap once. Requests: per provider one
// versions call, and per selected version one download call (for the
// first wanted platform it offers). A key that does not parse is an
// error naming the provider and version.
func ExportKeys(ctx context.Context, src KeySource, cfg *config.Config, dir string) ([]ExportedKey, error) {
	byFile := map[string]*ExportedKey{}
	var errs []error
	for _, p := range cfg.Providers {
		addr := p.Source.String()
		vs, err := src.ProviderVersions(ctx, p.Source)
		if err != nil {
			errs = append(errs, fmt.Errorf("provider %s: %w", addr, err))
			continue
		}
		for _, v := range vs.Versions {
			_, ok := manifest.ParseStrictVersion(v.Version)
			if !ok || !p.Constraints.Allows(v.Version) {
				continue
			}
			pkg, err := firstPackage(ctx, src, p, v)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for _, k := range pkg.SigningKeys {
				ring, err := openpgp.ReadArmoredKeyRing(strings.NewReader(k.ASCIIArmor))
				if err != nil || len(ring) == 0 {
					errs = append(errs, fmt.Errorf("provider %s %s: signing key %s does not parse: %v", addr, v.Version, k.KeyID, err))
					continue
				}
				id := ring[0].PrimaryKey.KeyIdString()
				name := KeyFileName(p.Source.Namespace, id)
				ek := byFile[name]
				if ek == nil {
					path := filepath.Join(dir, filepath.FromSlash(name))
					if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
						return nil, err
					}
					if err := atomicfile.WriteBytes(path, 0o644, []byte(k.ASCIIArmor)); err != nil {
						return nil, err
					}
					ek = &ExportedKey{Namespace: strings.ToLower(p.Source.Namespace), KeyID: strings.ToUpper(id), File: path}
					byFile[name] = ek
				}
				if !slices.Contains(ek.Providers, addr) {
					ek.Providers = append(ek.Providers, addr)
				}
			}
		}
	}
	var out []ExportedKey
	for _, name := range slices.Sorted(maps.Keys(byFile)) {
		out = append(out, *byFile[name])
	}
	return out, errors.Join(errs...)
}

// firstPackage asks for the first wanted platform the version offers (all
// wanted ones when the registry lists none), until one answers.
func firstPackage(ctx context.Context, src KeySource, p config.Provider, v upstream.ProviderVersion) (*upstream.ProviderPackage, error) {
	offered := map[string]bool{}
	for _, pl := range v.Platforms {
		offered[pl.String()] = true
	}
	var last error
	for _, pl := range p.Platforms {
		if len(offered) > 0 && !offered[pl.String()] {
			continue
		}
		pkg, err := src.ProviderDownload(ctx, p.Source, v.Version, pl)
		if errors.Is(err, upstream.ErrPlatformNotOffered) {
			last = err
			continue
		}
		return pkg, err
	}
	if last == nil {
		last = fmt.Errorf("provider %s %s: no wanted platform is offered", p.Source, v.Version)
	}
	return nil, last
}
