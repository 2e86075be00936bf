package config

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	regaddr "github.com/opentofu/registry-address/v2"
	"github.com/opentofu/svchost"
)

// Platform is an OpenTofu target platform such as linux_amd64. OS and Arch
// use Go's names, which is also what OCI image indexes use.
type Platform struct {
	OS, Arch string
}

// String returns the OpenTofu spelling, "linux_amd64".
func (p Platform) String() string {
	return p.OS + "_" + p.Arch
}

// platformPartRe is one side of OS_ARCH: OpenTofu and Go only use lower-case
// letters and digits there.
var platformPartRe = regexp.MustCompile(`^[a-z0-9]+$`)

// ParsePlatform parses "OS_ARCH" with exactly one underscore and lower-case
// letters and digits on each side. It does not check that Go knows the pair,
// since providers are built for platforms newer than this program.
func ParsePlatform(s string) (Platform, error) {
	osName, arch, ok := strings.Cut(s, "_")
	if !ok || strings.Contains(arch, "_") {
		return Platform{}, fmt.Errorf("%w %q: want OS_ARCH with exactly one underscore, e.g. linux_amd64", ErrInvalidPlatform, s)
	}
	if !platformPartRe.MatchString(osName) || !platformPartRe.MatchString(arch) {
		return Platform{}, fmt.Errorf("%w %q: OS and ARCH must be non-empty lower-case letters and digits, e.g. linux_amd64", ErrInvalidPlatform, s)
	}
	return Platform{OS: osName, Arch: arch}, nil
}

// portRe is a TCP port without sign or leading zeros.
var portRe = regexp.MustCompile(`^[1-9][0-9]{0,4}$`)

// dnsLabelRe is one lower-case DNS label (RFC 1123).
var dnsLabelRe = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$`)

// parseHostname validates "host[:port]" and returns it lower-cased, the
// form OpenTofu compares hostnames in. Hostnames must be ASCII: write
// internationalised names in their xn-- form.
func parseHostname(s string) (string, error) {
	host := strings.ToLower(s)
	if host == "" {
		return "", fmt.Errorf("%w %q: empty", ErrInvalidHostname, s)
	}
	if strings.ContainsAny(host, "/@?#") {
		return "", fmt.Errorf("%w %q: want host[:port], not a URL or path", ErrInvalidHostname, s)
	}
	if h, port, ok := strings.Cut(host, ":"); ok {
		n, err := strconv.Atoi(port)
		if !portRe.MatchString(port) || err != nil || n > 65535 {
			return "", fmt.Errorf("%w %q: port must be a number from 1 to 65535", ErrInvalidHostname, s)
		}
		host = h
	}
	if len(host) > 253 {
		return "", fmt.Errorf("%w %q: longer than 253 characters", ErrInvalidHostname, s)
	}
	for _, label := range strings.Split(host, ".") {
		if !dnsLabelRe.MatchString(label) {
			return "", fmt.Errorf("%w %q: want a DNS name (letters, digits, dashes and dots, no leading or trailing dash) with an optional :port", ErrInvalidHostname, s)
		}
	}
	return strings.ToLower(s), nil
}

// ProviderAddr is a provider source address. Parsed addresses are lower-case
// and always carry a Hostname.
type ProviderAddr struct {
	Hostname, Namespace, Type string
}

// String returns "HOSTNAME/NAMESPACE/TYPE"; an empty Hostname means
// DefaultHostname.
func (a ProviderAddr) String() string {
	return orDefaultHost(a.Hostname) + "/" + a.Namespace + "/" + a.Type
}

// ParseProviderAddr parses "[HOSTNAME/]NAMESPACE/TYPE" by OpenTofu's own
// rules (github.com/opentofu/registry-address/v2 ParseProviderSource): parts
// normalised to lower case, IDN hostnames written in Unicode and kept in
// their punycode comparison form, no "terraform-" or "opentofu-" type
// prefix, types may start with a digit; a missing hostname becomes
// DefaultHostname. The legacy one-part and "-" namespace forms are refused:
// the mirror needs a namespace to ask the registry.
func ParseProviderAddr(s string) (ProviderAddr, error) {
	bad := func(format string, args ...any) (ProviderAddr, error) {
		return ProviderAddr{}, fmt.Errorf("%w %q: %s", ErrInvalidProviderAddr, s, fmt.Sprintf(format, args...))
	}
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return bad("want [HOSTNAME/]NAMESPACE/TYPE, e.g. hashicorp/aws")
	}
	if len(parts) == 3 {
		display, reason := displayHost(parts[0])
		if reason != "" {
			return bad("%s", reason)
		}
		parts[0] = display
	}
	// Name the part that is wrong before the library's whole-address rules.
	for i, what := range []string{"namespace", "type"} {
		part := parts[len(parts)-2+i]
		if part == regaddr.LegacyProviderNamespace && what == "namespace" {
			continue
		}
		if _, err := regaddr.ParseProviderPart(part); err != nil {
			return bad("%s %q: %v", what, part, err)
		}
	}
	p, err := regaddr.ParseProviderSource(strings.Join(parts, "/"))
	if err != nil {
		return bad("%s", libraryReason(err))
	}
	if p.Namespace == regaddr.LegacyProviderNamespace || p.Namespace == regaddr.UnknownProviderNamespace {
		return bad("namespace %q is the legacy placeholder; write the provider's real namespace", p.Namespace)
	}
	return ProviderAddr{Hostname: p.Hostname.String(), Namespace: p.Namespace, Type: p.Type}, nil
}

// libraryReason is the text of a registry-address error on one line.
func libraryReason(err error) string {
	var pe *regaddr.ParserError
	if errors.As(err, &pe) {
		return strings.Join(strings.Fields(pe.Detail), " ")
	}
	return err.Error()
}

// displayHost checks a source address's hostname with OpenTofu's svchost
// and returns its Unicode display form, which the address parsers take.
// Unlike OpenTofu, the punycode form is accepted too, so that a parsed
// address (kept in punycode, which OCI and HTTP need) prints as a string
// that parses back.
func displayHost(h string) (string, string) {
	display := svchost.ForDisplay(h)
	if _, err := svchost.ForComparison(display); err != nil {
		return "", fmt.Sprintf("hostname %q is not a DNS name with an optional :port: %v", h, err)
	}
	return display, ""
}

// ModuleAddr is a module registry address. Parsed addresses always carry a
// lower-case Hostname; the other parts keep the case written, because the
// registry API is called with them.
type ModuleAddr struct {
	Hostname, Namespace, Name, System string
}

// String returns "HOSTNAME/NAMESPACE/NAME/SYSTEM"; an empty Hostname means
// DefaultHostname.
func (a ModuleAddr) String() string {
	return orDefaultHost(a.Hostname) + "/" + a.Namespace + "/" + a.Name + "/" + a.System
}

// ParseModuleAddr parses "[HOSTNAME/]NAMESPACE/NAME/SYSTEM" by OpenTofu's
// rules (registry-address/v2 ParseModuleSource: a hostname needs a dot,
// github.com and bitbucket.org are version control, not registries); a
// missing hostname becomes DefaultHostname and namespace and name keep the
// case written. A //subdirectory is refused: the mirror copies whole module
// packages.
func ParseModuleAddr(s string) (ModuleAddr, error) {
	bad := func(format string, args ...any) (ModuleAddr, error) {
		return ModuleAddr{}, fmt.Errorf("%w %q: %s", ErrInvalidModuleAddr, s, fmt.Sprintf(format, args...))
	}
	if strings.Contains(s, "//") {
		return bad("a //subdirectory is not part of a registry address; name the module package only")
	}
	parts := strings.Split(s, "/")
	if len(parts) < 3 || len(parts) > 4 {
		return bad("want [HOSTNAME/]NAMESPACE/NAME/SYSTEM, e.g. terraform-aws-modules/vpc/aws")
	}
	if len(parts) == 4 {
		display, reason := displayHost(parts[0])
		if reason != "" {
			return bad("%s", reason)
		}
		parts[0] = display
	}
	m, err := regaddr.ParseModuleSource(strings.Join(parts, "/"))
	if err != nil {
		return bad("%s", libraryReason(err))
	}
	pkg := m.Package
	return ModuleAddr{Hostname: pkg.Host.String(), Namespace: pkg.Namespace, Name: pkg.Name, System: pkg.TargetSystem}, nil
}

func orDefaultHost(h string) string {
	if h == "" {
		return DefaultHostname
	}
	return h
}
