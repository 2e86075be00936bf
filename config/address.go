package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
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

// providerPartRe is a provider namespace or type after lower-casing: letters,
// digits and single dashes, no leading or trailing dash. OpenTofu accepts
// Unicode letters here; we accept ASCII only because OCI repository names do.
var providerPartRe = regexp.MustCompile(`^[a-z0-9]+(?:-[a-z0-9]+)*$`)

// ParseProviderAddr parses "[HOSTNAME/]NAMESPACE/TYPE" and normalises it to
// lower case as OpenTofu does; a missing hostname becomes DefaultHostname.
func ParseProviderAddr(s string) (ProviderAddr, error) {
	bad := func(format string, args ...any) (ProviderAddr, error) {
		return ProviderAddr{}, fmt.Errorf("%w %q: %s", ErrInvalidProviderAddr, s, fmt.Sprintf(format, args...))
	}
	host, parts, reason := splitSource(s, 2, "want [HOSTNAME/]NAMESPACE/TYPE, e.g. hashicorp/aws")
	if reason != "" {
		return bad("%s", reason)
	}
	a := ProviderAddr{Hostname: host}
	ns, typ := strings.ToLower(parts[0]), strings.ToLower(parts[1])
	switch {
	case ns == "":
		return bad("namespace is empty")
	case !providerPartRe.MatchString(ns):
		return bad("namespace %q may contain only letters, digits and single dashes, not at either end", parts[0])
	case typ == "":
		return bad("type is empty")
	case !providerPartRe.MatchString(typ):
		return bad("type %q may contain only letters, digits and single dashes, not at either end", parts[1])
	case typ[0] >= '0' && typ[0] <= '9':
		return bad("type %q must not start with a digit", parts[1])
	case strings.HasPrefix(typ, "terraform-"):
		// OpenTofu refuses this prefix: it is the plugin binary's name, not
		// the provider's.
		return bad("type %q must not start with \"terraform-\"; write %q", parts[1], strings.TrimPrefix(strings.TrimPrefix(typ, "terraform-"), "provider-"))
	}
	a.Namespace, a.Type = ns, typ
	return a, nil
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

// Module address parts, as OpenTofu's registry source parser has them.
var (
	moduleNameRe   = regexp.MustCompile(`^[0-9A-Za-z](?:[0-9A-Za-z_-]{0,62}[0-9A-Za-z])?$`)
	moduleSystemRe = regexp.MustCompile(`^[0-9a-z]{1,64}$`)
)

// ParseModuleAddr parses "[HOSTNAME/]NAMESPACE/NAME/SYSTEM"; a missing
// hostname becomes DefaultHostname. A //subdirectory is refused: the mirror
// copies whole module packages.
func ParseModuleAddr(s string) (ModuleAddr, error) {
	bad := func(format string, args ...any) (ModuleAddr, error) {
		return ModuleAddr{}, fmt.Errorf("%w %q: %s", ErrInvalidModuleAddr, s, fmt.Sprintf(format, args...))
	}
	if strings.Contains(s, "//") {
		return bad("a //subdirectory is not part of a registry address; name the module package only")
	}
	host, parts, reason := splitSource(s, 3, "want [HOSTNAME/]NAMESPACE/NAME/SYSTEM, e.g. terraform-aws-modules/vpc/aws")
	if reason != "" {
		return bad("%s", reason)
	}
	a := ModuleAddr{Hostname: host}
	for i, what := range []string{"namespace", "name"} {
		switch p := parts[i]; {
		case p == "":
			return bad("%s is empty", what)
		case !moduleNameRe.MatchString(p):
			return bad("%s %q may contain only letters, digits, dashes and underscores, starting and ending with a letter or digit, at most 64 characters", what, p)
		}
	}
	switch p := parts[2]; {
	case p == "":
		return bad("system is empty")
	case !moduleSystemRe.MatchString(p):
		return bad("system %q may contain only lower-case letters and digits, at most 64", p)
	}
	a.Namespace, a.Name, a.System = parts[0], parts[1], parts[2]
	return a, nil
}

// splitSource splits a source address into its hostname (DefaultHostname
// when left out) and the n parts after it. reason is "" on success, usage
// when the number of parts is wrong, else what is wrong with the hostname.
func splitSource(s string, n int, usage string) (host string, parts []string, reason string) {
	parts = strings.Split(s, "/")
	switch len(parts) {
	case n:
		return DefaultHostname, parts, ""
	case n + 1:
		host, err := parseHostname(parts[0])
		if err != nil {
			return "", nil, fmt.Sprintf("hostname %q is not a DNS name with an optional :port", parts[0])
		}
		return host, parts[1:], ""
	}
	return "", nil, usage
}

func orDefaultHost(h string) string {
	if h == "" {
		return DefaultHostname
	}
	return h
}
