package upstream

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/apparentlymart/go-versions/versions"
	"github.com/apparentlymart/go-versions/versions/constraints"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
)

// ProviderVersions is the answer of a provider's versions endpoint.
type ProviderVersions struct {
	// Versions in the registry's order; may be empty.
	Versions []ProviderVersion
	// Warnings are the registry's "warnings" for this provider (e.g. it
	// moved or is deprecated); the caller shows them to the user.
	Warnings []string
}

// ProviderVersion is one version of a provider as the registry lists it.
type ProviderVersion struct {
	// Version is the registry's spelling, strict semver without a "v".
	Version string
	// Protocols are plugin protocol versions such as "5.0"; empty when the
	// registry did not say.
	Protocols []string
	// Platforms the version is built for; empty when the registry did not
	// say.
	Platforms []config.Platform
	// PlatformsListed is false when the registry listed no platforms for
	// the version. OpenTofu never reads the list: it asks the download
	// endpoint for each platform it wants (404 = not offered), and so must
	// a planner for such a version.
	PlatformsListed bool
}

// supportedProtocols is OpenTofu's SupportedPluginProtocols
// (internal/getproviders/registry_client.go): plugin protocols 5 and 6.
var supportedProtocols = versions.MeetingConstraints(mustRubyConstraints(">= 5, <7"))

func mustRubyConstraints(s string) constraints.IntersectionSpec {
	c, err := constraints.ParseRubyStyleMulti(s)
	if err != nil {
		panic(err)
	}
	return c
}

// protocolsProblem says why OpenTofu would refuse a version listing
// protocols, or "" when it would not: no protocol listed, or at least one in
// 5.x or 6.x. An unparsable protocol is refused as OpenTofu refuses it.
func protocolsProblem(protocols []string) string {
	if len(protocols) == 0 {
		return ""
	}
	for _, p := range protocols {
		v, err := versions.ParseVersion(p)
		if err != nil {
			return fmt.Sprintf("plugin protocol %q is not a version", p)
		}
		if supportedProtocols.Has(v) {
			return ""
		}
	}
	return fmt.Sprintf("plugin protocols %s are outside 5.x and 6.x, which OpenTofu refuses to install", strings.Join(protocols, ", "))
}

// ProviderPackage is the answer of the download endpoint with every URL
// resolved to absolute.
type ProviderPackage struct {
	// Provider has its Hostname filled in (config.DefaultHostname when the
	// request left it empty).
	Provider config.ProviderAddr
	Version  string
	Platform config.Platform
	// Protocols are the plugin protocol versions the registry reports.
	Protocols []string
	// Filename is the zip's name, as listed in SHA256SUMS; a plain name.
	Filename            string
	DownloadURL         string
	SHASumsURL          string
	SHASumsSignatureURL string
	// SHA256 is lower-case hex from "shasum".
	SHA256 string
	// Size is packages[platform].package_size, -1 when unknown.
	Size int64
	// Hashes are packages[platform].hashes verbatim ("zh:<hex>",
	// "h1:<base64>"); nil when the registry gave none.
	Hashes []string
	// SigningKeys are the registry's gpg_public_keys; may be empty.
	SigningKeys []SigningKey
}

// SigningKey is an OpenPGP public key the registry offers for checking the
// SHA256SUMS signature.
type SigningKey struct {
	KeyID      string
	ASCIIArmor string
}

// providerName is "HOST/NAMESPACE/TYPE" for messages.
func providerName(a config.ProviderAddr) string {
	return hostOrDefault(a.Hostname) + "/" + a.Namespace + "/" + a.Type
}

func hostOrDefault(h string) string {
	if h == "" {
		return config.DefaultHostname
	}
	return normalizeHost(h)
}

// ProviderVersions lists the versions of provider a. A provider the registry
// does not know gives an error wrapping ErrNotFound.
func (c *Client) ProviderVersions(ctx context.Context, a config.ProviderAddr) (*ProviderVersions, error) {
	host := hostOrDefault(a.Hostname)
	name := providerName(a)
	resp, _, err := c.apiCall(ctx, host, ProvidersService, a.Namespace, a.Type, "versions")
	if err != nil {
		return nil, fmt.Errorf("provider %s: listing versions: %w", name, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, fmt.Errorf("provider %s: registry does not know it (404 from %s): %w", name, redactURL(resp.Request.URL), ErrNotFound)
	default:
		return nil, fmt.Errorf("provider %s: listing versions: %w", name, statusError(resp))
	}
	var body struct {
		Versions []struct {
			Version   string   `json:"version"`
			Protocols []string `json:"protocols"`
			Platforms []struct {
				OS   string `json:"os"`
				Arch string `json:"arch"`
			} `json:"platforms"`
		} `json:"versions"`
		Warnings []string `json:"warnings"`
	}
	if err := decodeJSON(resp, &body); err != nil {
		return nil, fmt.Errorf("provider %s: listing versions: %w", name, err)
	}
	out := &ProviderVersions{Warnings: body.Warnings, Versions: make([]ProviderVersion, 0, len(body.Versions))}
	for i, v := range body.Versions {
		if v.Version == "" {
			return nil, fmt.Errorf("provider %s: versions[%d] has no version: %w", name, i, ErrProtocol)
		}
		if problem := protocolsProblem(v.Protocols); problem != "" {
			out.Warnings = append(out.Warnings, fmt.Sprintf("version %s skipped: %s", v.Version, problem))
			c.log.Warn("provider version skipped", "provider", name, "version", v.Version, "reason", problem)
			continue
		}
		pv := ProviderVersion{Version: v.Version, Protocols: v.Protocols, PlatformsListed: len(v.Platforms) > 0}
		for _, p := range v.Platforms {
			pv.Platforms = append(pv.Platforms, config.Platform{OS: p.OS, Arch: p.Arch})
		}
		out.Versions = append(out.Versions, pv)
	}
	return out, nil
}

// ProviderDownload asks the registry where the package of provider a, version,
// platform p is and how to verify it. A 404 gives an error wrapping
// ErrPlatformNotOffered. Relative URLs in the answer are resolved against the
// URL that answered (after redirects).
func (c *Client) ProviderDownload(ctx context.Context, a config.ProviderAddr, version string, p config.Platform) (*ProviderPackage, error) {
	host := hostOrDefault(a.Hostname)
	what := fmt.Sprintf("provider %s %s %s", providerName(a), version, p.String())
	resp, _, err := c.apiCall(ctx, host, ProvidersService, a.Namespace, a.Type, version, "download", p.OS, p.Arch)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, fmt.Errorf("%s: registry answered 404: %w", what, ErrPlatformNotOffered)
	default:
		return nil, fmt.Errorf("%s: %w", what, statusError(resp))
	}
	var body struct {
		Protocols           []string `json:"protocols"`
		OS                  string   `json:"os"`
		Arch                string   `json:"arch"`
		Filename            string   `json:"filename"`
		DownloadURL         string   `json:"download_url"`
		SHASumsURL          string   `json:"shasums_url"`
		SHASumsSignatureURL string   `json:"shasums_signature_url"`
		SHASum              string   `json:"shasum"`
		SigningKeys         struct {
			GPGPublicKeys []struct {
				KeyID      string `json:"key_id"`
				ASCIIArmor string `json:"ascii_armor"`
			} `json:"gpg_public_keys"`
		} `json:"signing_keys"`
		Packages map[string]struct {
			Hashes      []string `json:"hashes"`
			PackageSize *int64   `json:"package_size"`
		} `json:"packages"`
	}
	if err := decodeJSON(resp, &body); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%s: registry answer from %s: %s: %w", what, redactURL(resp.Request.URL), fmt.Sprintf(format, args...), ErrProtocol)
	}
	if body.OS != p.OS || body.Arch != p.Arch {
		return nil, bad("it is for %s_%s, not the requested platform", body.OS, body.Arch)
	}
	if body.Filename == "" || strings.ContainsAny(body.Filename, `/\`) || body.Filename == "." || body.Filename == ".." {
		return nil, bad("filename %q is not a plain file name", body.Filename)
	}
	sum := strings.ToLower(body.SHASum)
	if b, err := hex.DecodeString(sum); err != nil || len(b) != 32 {
		return nil, bad("shasum %q is not a hex SHA-256", body.SHASum)
	}
	final := resp.Request.URL
	resolve := func(field, raw string) (string, error) {
		if raw == "" {
			return "", bad("%s is empty", field)
		}
		ref, err := url.Parse(raw)
		if err != nil {
			return "", bad("%s %q is not a URL", field, raw)
		}
		abs := final.ResolveReference(ref)
		if abs.Scheme != "http" && abs.Scheme != "https" {
			return "", bad("%s %s is not http(s)", field, redactURL(abs))
		}
		return abs.String(), nil
	}
	pkg := &ProviderPackage{
		Provider:  config.ProviderAddr{Hostname: host, Namespace: a.Namespace, Type: a.Type},
		Version:   version,
		Platform:  p,
		Protocols: body.Protocols,
		Filename:  body.Filename,
		SHA256:    sum,
		Size:      -1,
	}
	if pkg.DownloadURL, err = resolve("download_url", body.DownloadURL); err != nil {
		return nil, err
	}
	if pkg.SHASumsURL, err = resolve("shasums_url", body.SHASumsURL); err != nil {
		return nil, err
	}
	if pkg.SHASumsSignatureURL, err = resolve("shasums_signature_url", body.SHASumsSignatureURL); err != nil {
		return nil, err
	}
	if entry, ok := body.Packages[p.String()]; ok {
		pkg.Hashes = entry.Hashes
		if entry.PackageSize != nil {
			if *entry.PackageSize < 0 {
				return nil, bad("package_size %d is negative", *entry.PackageSize)
			}
			pkg.Size = *entry.PackageSize
		}
	}
	for _, k := range body.SigningKeys.GPGPublicKeys {
		pkg.SigningKeys = append(pkg.SigningKeys, SigningKey{KeyID: k.KeyID, ASCIIArmor: k.ASCIIArmor})
	}
	return pkg, nil
}

// String names the package for messages: "provider HOST/NS/TYPE VERSION OS_ARCH".
func (p *ProviderPackage) String() string {
	return fmt.Sprintf("provider %s %s %s", providerName(p.Provider), p.Version, p.Platform.String())
}
