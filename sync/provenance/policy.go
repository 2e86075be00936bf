package provenance

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/upstream"
)

// Policy is what a run trusts to vouch for a provider release. The zero
// value trusts nothing: no key verifies, no provider may come unsigned.
//
// Which keys may verify a release's SHA256SUMS: with PinnedKeys, only the
// keys pinned for the provider's namespace, whatever key came with the
// release (a carried key is evidence, never trust). Without, the keys that
// came with it, but only when CarriedKeysTrusted (upstream served them
// over TLS, or a bundle whose own signature verified carried them). A key
// stored next to an artifact in a registry, or carried in an unsigned
// bundle, is therefore never trusted on its own.
type Policy struct {
	// Signatures is how strictly OpenPGP signatures are judged.
	Signatures upstream.SignaturePolicy
	// PinnedKeys maps a provider namespace (lower case) to the armored
	// public keys pinned for it; nil pins nothing (see [LoadPinnedKeys]).
	PinnedKeys map[string][]string
	// AllowUnsigned are provider addresses or namespace globs
	// ("host/namespace/*", as config.Trust normalises them) that may come
	// without a valid signature by a trusted key.
	AllowUnsigned []string
	// CarriedKeysTrusted trusts the keys that came with a release when no
	// key is pinned.
	CarriedKeysTrusted bool
	// OpenTofuException lets providers of registry.opentofu.org come
	// without signing keys, as OpenTofu itself does (unless
	// Signatures.EnforceValidation): the connected side's default.
	OpenTofuException bool
}

// FromConfig builds the policy of a plan's trust section: keys pinned from
// trust.provider_keys and the providers allowed unsigned. Carried keys and
// OpenTofu's exception are the caller's to switch on.
func FromConfig(t config.Trust, sig upstream.SignaturePolicy) (Policy, error) {
	p := Policy{Signatures: sig, AllowUnsigned: t.AllowUnsignedProviders}
	if t.ProviderKeys != "" {
		keys, err := LoadPinnedKeys(t.ProviderKeys)
		if err != nil {
			return p, err
		}
		p.PinnedKeys = keys
	}
	return p, nil
}

// Pinned reports whether keys are pinned.
func (p Policy) Pinned() bool { return p.PinnedKeys != nil }

// Keys decides, for the provider at address ("host/namespace/type"),
// which armored keys may verify its SHA256SUMS given the carried ones, and
// whether it may come without a valid signature. why explains an empty
// key list.
func (p Policy) Keys(address string, carried []string) (keys []string, mayBeUnsigned bool, why string) {
	host, namespace := splitAddress(address)
	mayBeUnsigned = p.allowedUnsigned(address) ||
		p.OpenTofuException && p.Signatures.MayBeUnsigned(host) && len(carried) == 0
	switch {
	case p.Pinned():
		keys = p.PinnedKeys[strings.ToLower(namespace)]
		if len(keys) == 0 {
			why = fmt.Sprintf("no key is pinned for namespace %q in trust.provider_keys", namespace)
		}
	case p.CarriedKeysTrusted:
		keys = carried
		if len(keys) == 0 {
			why = "no signing key came with it"
		}
	default:
		why = "no trusted key: trust.provider_keys pins none, and the key that came with it is not vouched for (an unsigned bundle, or a key stored in the registry)"
	}
	return keys, mayBeUnsigned, why
}

// MayBeUnsigned reports whether the provider at address may come without
// a signature at all.
func (p Policy) MayBeUnsigned(address string) bool {
	_, may, _ := p.Keys(address, nil)
	return may
}

func (p Policy) allowedUnsigned(address string) bool {
	host, namespace := splitAddress(address)
	for _, pat := range p.AllowUnsigned {
		if pat == address || pat == host+"/"+namespace+"/*" {
			return true
		}
	}
	return false
}

func splitAddress(address string) (host, namespace string) {
	parts := strings.Split(address, "/")
	if len(parts) != 3 {
		return "", ""
	}
	return parts[0], parts[1]
}

// CheckSigned is the one decision on a release: it verifies sums against
// the detached signature sig with the keys p trusts for address (given the
// carried ones), and parses it. A release without a valid signature by a
// trusted key passes, with a warning, only when p allows address unsigned.
// Errors wrap upstream.ErrSignature or upstream.ErrNoSigningKeys (and
// upstream.ErrProtocol for a malformed SHA256SUMS). Sync and export use it
// through [upstream.WithReleaseCheck]; verify and import through
// [Policy.CheckStored].
func (p Policy) CheckSigned(address string, sums, sig []byte, carried []string) (*upstream.Provenance, error) {
	trusted, mayBeUnsigned, why := p.Keys(address, carried)
	unsigned := func(reason string) (*upstream.Provenance, error) {
		prov, err := upstream.CheckProvenance(sums, nil, nil, true, p.Signatures)
		if err != nil {
			return nil, err
		}
		if reason != "" {
			prov.Warnings = []string{reason}
		}
		return prov, nil
	}
	switch {
	case len(sig) == 0 && mayBeUnsigned:
		if p.allowedUnsigned(address) {
			return unsigned("SHA256SUMS is not signed; accepted because trust.allow_unsigned_providers names " + address)
		}
		return unsigned("")
	case len(sig) == 0:
		return nil, fmt.Errorf("SHA256SUMS carries no signature and %s is not allowed unsigned (trust.allow_unsigned_providers): %w", address, upstream.ErrNoSigningKeys)
	case len(trusted) == 0 && mayBeUnsigned:
		return unsigned(fmt.Sprintf("SHA256SUMS signature not checked (%s); accepted because %s may come unsigned", why, address))
	case len(trusted) == 0:
		return nil, fmt.Errorf("SHA256SUMS of %s: %s: %w", address, why, upstream.ErrNoSigningKeys)
	}
	prov, err := upstream.CheckProvenance(sums, sig, trusted, false, p.Signatures)
	if err != nil && mayBeUnsigned && p.allowedUnsigned(address) {
		return unsigned(fmt.Sprintf("SHA256SUMS signature does not verify with a trusted key (%v); accepted because trust.allow_unsigned_providers names %s", err, address))
	}
	if err != nil && p.Pinned() {
		return nil, fmt.Errorf("SHA256SUMS of %s is not signed by a key pinned for its namespace in trust.provider_keys: %w", address, err)
	}
	return prov, err
}

// ReleaseCheck adapts [Policy.CheckSigned] for the upstream client.
func (p Policy) ReleaseCheck() upstream.ReleaseCheck {
	return func(a config.ProviderAddr, sums, sig []byte, served []string) (*upstream.Provenance, error) {
		return p.CheckSigned(a.String(), sums, sig, served)
	}
}

// LoadPinnedKeys reads a directory laid out as the OpenTofu registry lays
// out its keys, <namespace>/*.asc, into namespace (lower case) → armored
// keys. A file that is not an ASCII-armored public key is an error naming
// it; an empty directory pins nothing for any namespace (every signed
// provider is then refused).
func LoadPinnedKeys(dir string) (map[string][]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("trust.provider_keys: %w", err)
	}
	out := map[string][]string{}
	for _, ns := range ents {
		if !ns.IsDir() {
			continue
		}
		files, err := filepath.Glob(filepath.Join(dir, ns.Name(), "*.asc"))
		if err != nil {
			return nil, err
		}
		slices.Sort(files)
		for _, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("trust.provider_keys: %w", err)
			}
			if _, err := openpgp.ReadArmoredKeyRing(strings.NewReader(string(raw))); err != nil {
				return nil, fmt.Errorf("trust.provider_keys: %s is not an ASCII-armored OpenPGP public key: %v", f, err)
			}
			key := strings.ToLower(ns.Name())
			out[key] = append(out[key], string(raw))
		}
	}
	return out, nil
}

// KeyFileName is the file a key is written to in the provider_keys
// layout: <namespace>/<key id>.asc.
func KeyFileName(namespace, keyID string) string {
	return path.Join(strings.ToLower(namespace), strings.ToUpper(keyID)+".asc")
}
