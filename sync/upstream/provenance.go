package upstream

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
)

// Environment variables OpenTofu reads to tighten its signature policy.
// The CLI reads them into a [SignaturePolicy]; this package never does.
const (
	// EnforceGPGValidationEnv set to "true" removes the no-keys exception of
	// registry.opentofu.org.
	EnforceGPGValidationEnv = "OPENTOFU_ENFORCE_GPG_VALIDATION"
	// EnforceGPGExpirationEnv set to "true" refuses expired signing keys.
	EnforceGPGExpirationEnv = "OPENTOFU_ENFORCE_GPG_EXPIRATION"
)

// ReleaseCheck decides whether a provider release's SHA256SUMS is signed by
// a key this run trusts, given the keys the registry served, and parses it
// (see the provenance package's Policy.CheckSigned).
type ReleaseCheck func(a config.ProviderAddr, sums, sig []byte, served []string) (*Provenance, error)

// SignaturePolicy is how strictly signatures are judged. The zero value is
// OpenTofu's default: expired keys are accepted with a warning, and
// providers of registry.opentofu.org may come without signing keys.
type SignaturePolicy struct {
	// EnforceValidation removes the no-keys exception of
	// registry.opentofu.org (OPENTOFU_ENFORCE_GPG_VALIDATION=true).
	EnforceValidation bool
	// EnforceExpiration refuses expired signing keys
	// (OPENTOFU_ENFORCE_GPG_EXPIRATION=true).
	EnforceExpiration bool
}

// SignaturePolicyFromEnv reads OpenTofu's two variables through getenv
// (os.Getenv in the CLI).
func SignaturePolicyFromEnv(getenv func(string) string) SignaturePolicy {
	return SignaturePolicy{
		EnforceValidation: getenv(EnforceGPGValidationEnv) == "true",
		EnforceExpiration: getenv(EnforceGPGExpirationEnv) == "true",
	}
}

// MayBeUnsigned reports whether a provider of hostname may come without
// signing keys: OpenTofu's exception for registry.opentofu.org, unless
// enforcement removed it.
func (p SignaturePolicy) MayBeUnsigned(hostname string) bool {
	return hostOrDefault(hostname) == config.DefaultHostname && !p.EnforceValidation
}

// Provenance is the verified signed checksum file of one provider release.
type Provenance struct {
	// SHA256SUMS and Signature are the exact bytes checked.
	SHA256SUMS []byte
	Signature  []byte
	// SigningKey is the ASCII-armored public key that verified; empty when
	// unsigned by exception.
	SigningKey string
	// KeyID is the verifying key's id, 16 upper-case hex digits; empty when
	// unsigned by exception.
	KeyID string
	// Sums maps file name to lower-case hex SHA-256, from SHA256SUMS.
	Sums map[string]string
	// Warnings for the user, e.g. an expired key or unsigned by exception.
	Warnings []string
}

// Unsigned reports whether the signature was skipped by OpenTofu's
// exception for registry.opentofu.org.
func (p *Provenance) Unsigned() bool { return p.SigningKey == "" }

// CheckFile checks that the signed SHA256SUMS lists filename with sha256hex.
// A missing line or another hash gives an error wrapping ErrChecksumMismatch.
func (p *Provenance) CheckFile(filename, sha256hex string) error {
	got, ok := p.Sums[filename]
	if !ok {
		return fmt.Errorf("signed SHA256SUMS has no line for %s: %w", filename, ErrChecksumMismatch)
	}
	if want := strings.ToLower(sha256hex); got != want {
		return fmt.Errorf("signed SHA256SUMS says %s for %s, registry says %s: %w", got, filename, want, ErrChecksumMismatch)
	}
	return nil
}

// VerifyProvenance downloads pkg's SHA256SUMS and its signature (without
// credentials), checks the signature against pkg.SigningKeys, then checks
// that the SHA256SUMS line for pkg.Filename and any "zh:" hash the registry
// gave equal pkg.SHA256. Which keys count is the client's [ReleaseCheck]
// (WithReleaseCheck); by default the keys the registry served, and with no
// keys registry.opentofu.org is exempt (with a warning), as in OpenTofu,
// unless the client's [SignaturePolicy] enforces validation; elsewhere no
// keys is ErrNoSigningKeys.
func (c *Client) VerifyProvenance(ctx context.Context, pkg *ProviderPackage) (*Provenance, error) {
	sums, err := c.fetchSmall(ctx, pkg.SHASumsURL)
	if err != nil {
		return nil, fmt.Errorf("%s: fetching SHA256SUMS: %w", pkg, err)
	}
	sig, err := c.fetchSmall(ctx, pkg.SHASumsSignatureURL)
	if err != nil {
		return nil, fmt.Errorf("%s: fetching SHA256SUMS signature: %w", pkg, err)
	}
	keys := make([]string, 0, len(pkg.SigningKeys))
	for _, k := range pkg.SigningKeys {
		keys = append(keys, k.ASCIIArmor)
	}
	var prov *Provenance
	if c.opts.releaseCheck != nil {
		prov, err = c.opts.releaseCheck(pkg.Provider, sums, sig, keys)
	} else {
		prov, err = CheckProvenance(sums, sig, keys, c.signatures.MayBeUnsigned(pkg.Provider.Hostname), c.signatures)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pkg, err)
	}
	if err := prov.CheckFile(pkg.Filename, pkg.SHA256); err != nil {
		return nil, fmt.Errorf("%s: %w", pkg, err)
	}
	for _, h := range pkg.Hashes {
		if zh, ok := strings.CutPrefix(h, "zh:"); ok && strings.ToLower(zh) != pkg.SHA256 {
			return nil, fmt.Errorf("%s: registry's packages hash %s differs from its shasum %s: %w", pkg, h, pkg.SHA256, ErrChecksumMismatch)
		}
	}
	return prov, nil
}

// fetchSmall GETs a small file without credentials.
func (c *Client) fetchSmall(ctx context.Context, raw string) ([]byte, error) {
	u, err := parseHTTPURL(raw)
	if err != nil {
		return nil, err
	}
	resp, err := c.get(ctx, c.api, u, "", "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(resp)
	}
	return readSmall(resp, MaxJSONSize)
}

func parseHTTPURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("invalid URL %q: %w", raw, ErrProtocol)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("URL %s is not an absolute http(s) URL: %w", redactURL(u), ErrProtocol)
	}
	return u, nil
}

// CheckProvenance verifies sums against the binary detached signature sig
// with each of armoredKeys in turn (a key that did not make the signature
// moves on to the next), offline, and parses sums. An expired key is
// accepted with a warning unless policy enforces expiration. With no keys
// it fails with ErrNoSigningKeys unless allowUnsigned, which skips the
// signature with a warning. Bad signatures wrap ErrSignature.
func CheckProvenance(sums, sig []byte, armoredKeys []string, allowUnsigned bool, policy SignaturePolicy) (*Provenance, error) {
	prov := &Provenance{SHA256SUMS: sums, Signature: sig}
	if len(armoredKeys) == 0 {
		if !allowUnsigned {
			return nil, fmt.Errorf("registry returned no signing keys to check the SHA256SUMS signature: %w", ErrNoSigningKeys)
		}
		prov.Warnings = append(prov.Warnings, "registry returned no signing keys: SHA256SUMS signature not checked "+
			"(OpenTofu makes this exception for "+config.DefaultHostname+" only)")
	} else {
		key, keyID, expired, err := findSigner(sums, sig, armoredKeys, policy.EnforceExpiration)
		if err != nil {
			return nil, err
		}
		prov.SigningKey, prov.KeyID = key, keyID
		if expired {
			prov.Warnings = append(prov.Warnings, fmt.Sprintf("signing key %s has expired; accepted as OpenTofu does (set %s=true to refuse)", keyID, EnforceGPGExpirationEnv))
		}
	}
	parsed, problems, err := ParseSHA256SUMS(sums)
	if err != nil {
		return nil, err
	}
	prov.Sums = parsed
	prov.Warnings = append(prov.Warnings, problems...)
	return prov, nil
}

// findSigner returns the first key that verifies sig over sums; an expired
// key only when no valid one does.
func findSigner(sums, sig []byte, armoredKeys []string, enforceExpiration bool) (key, keyID string, expired bool, err error) {
	var expiredKey, expiredID string
	for i, armored := range armoredKeys {
		ring, err := openpgp.ReadArmoredKeyRing(strings.NewReader(armored))
		if err != nil {
			return "", "", false, fmt.Errorf("decoding signing key %d: %v: %w", i+1, err, ErrSignature)
		}
		signer, err := openpgp.CheckDetachedSignature(ring, bytes.NewReader(sums), bytes.NewReader(sig), nil)
		switch {
		case err == nil:
			return armored, entityID(signer), false, nil
		case errors.Is(err, pgperrors.ErrUnknownIssuer):
			continue
		case errors.Is(err, pgperrors.ErrKeyExpired) || errors.Is(err, pgperrors.ErrSignatureExpired):
			if expiredKey == "" {
				expiredKey, expiredID = armored, entityID(signer)
			}
			continue
		default:
			return "", "", false, fmt.Errorf("checking SHA256SUMS signature with key %d: %v: %w", i+1, err, ErrSignature)
		}
	}
	if expiredKey != "" && !enforceExpiration {
		return expiredKey, expiredID, true, nil
	}
	if expiredKey != "" {
		return "", "", false, fmt.Errorf("SHA256SUMS signed by expired key %s and %s=true: %w", expiredID, EnforceGPGExpirationEnv, ErrSignature)
	}
	return "", "", false, fmt.Errorf("SHA256SUMS signature is not from any of the %d signing key(s) the registry offers: %w", len(armoredKeys), ErrSignature)
}

func entityID(e *openpgp.Entity) string {
	if e == nil || e.PrimaryKey == nil {
		return "n/a"
	}
	return e.PrimaryKey.KeyIdString()
}

// ParseSHA256SUMS parses "<64 hex>  <filename>" lines (also "<hex> *<filename>",
// as sha256sum writes in binary mode) into filename -> lower-case hex. Blank
// lines and CRLF endings are tolerated. A malformed line, or a later line
// giving a file another hash, is left out and described in problems (naming
// the line): OpenTofu reads only the line of the file it installs, so one
// bad line must not fail a version whose own line is fine. No well-formed
// line at all is an error wrapping ErrProtocol.
func ParseSHA256SUMS(data []byte) (sums map[string]string, problems []string, err error) {
	out := map[string]string{}
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimSuffix(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		name, sum, problem := parseSumLine(line)
		if problem == "" {
			if prev, ok := out[name]; ok && prev != sum {
				problem = fmt.Sprintf("%s listed again with another hash (the first line counts, as in OpenTofu)", name)
			}
		}
		if problem != "" {
			problems = append(problems, fmt.Sprintf("SHA256SUMS line %d: %s: ignored", n, problem))
			continue
		}
		out[name] = sum
	}
	if len(out) == 0 {
		return nil, problems, fmt.Errorf("SHA256SUMS has no checksum lines (%s): %w", strings.Join(append([]string{fmt.Sprintf("%d malformed", len(problems))}, problems...), "; "), ErrProtocol)
	}
	return out, problems, nil
}

// parseSumLine reads one non-blank line, or says what is wrong with it.
func parseSumLine(line string) (name, sum, problem string) {
	if len(line) < 64 {
		return "", "", "too short for a SHA-256"
	}
	sum = strings.ToLower(line[:64])
	if _, err := hex.DecodeString(sum); err != nil {
		return "", "", fmt.Sprintf("%q is not hex", line[:64])
	}
	rest := line[64:]
	if rest == "" || (rest[0] != ' ' && rest[0] != '\t') {
		return "", "", "no blank between hash and file name"
	}
	name = strings.TrimRight(strings.TrimPrefix(strings.TrimLeft(rest, " \t"), "*"), " \t\r")
	if name == "" {
		return "", "", "no file name"
	}
	return name, sum, ""
}
