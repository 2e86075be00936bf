package config

import (
	"fmt"
	"regexp"
	"strings"

	goversion "github.com/hashicorp/go-version"

	"github.com/apparentlymart/go-versions/versions"
	"github.com/apparentlymart/go-versions/versions/constraints"
)

// Constraints is a parsed OpenTofu version constraint set, read by the rules
// OpenTofu applies to its kind: ParseProviderConstraints for providers,
// ParseModuleConstraints for modules. The zero value has no constraints: it
// allows every release that parses as a provider version and no pre-release.
type Constraints struct {
	// terms are the comma-separated terms as written, trimmed; for String.
	terms []string
	// provider is set for provider constraints: the version set OpenTofu's
	// versions.MeetingConstraints builds.
	provider *versions.Set
	// module is set for module constraints: hashicorp/go-version's, as
	// OpenTofu's module installer checks them.
	module goversion.Constraints
	// modulePrerelease is the set OpenTofu's module installer also asks a
	// pre-release to be in (go-versions' npm-style parse of the whole
	// constraint, "v" prefixes stripped when that fails); nil when neither
	// parse succeeds, which admits no pre-release.
	modulePrerelease *versions.Set
}

// ParseConstraints is ParseProviderConstraints.
func ParseConstraints(s string) (Constraints, error) { return ParseProviderConstraints(s) }

// ParseProviderConstraints parses a provider version constraint exactly as
// OpenTofu does (internal/getproviders ParseVersionConstraints:
// go-versions' constraints.ParseRubyStyleMulti): comma-separated terms
// "OP VERSION" with OP one of =, !=, >, >=, <, <=, ~> (none means =); no "v"
// prefix. Unlike OpenTofu, an empty string is refused: a plan entry must
// say which versions it mirrors.
func ParseProviderConstraints(s string) (Constraints, error) {
	terms, err := splitTerms(s)
	if err != nil {
		return Constraints{}, err
	}
	spec, err := constraints.ParseRubyStyleMulti(s)
	if err != nil {
		return Constraints{}, fmt.Errorf("%w %q: %v", ErrInvalidConstraint, s, err)
	}
	set := versions.MeetingConstraints(spec)
	return Constraints{terms: terms, provider: &set}, nil
}

// ParseModuleConstraints parses a module version constraint as OpenTofu's
// configuration loader and module installer do: hashicorp/go-version's
// NewConstraint (a "v" prefix is accepted there), with pre-releases
// additionally subject to the installer's exact-request rule (see Allows).
func ParseModuleConstraints(s string) (Constraints, error) {
	terms, err := splitTerms(s)
	if err != nil {
		return Constraints{}, err
	}
	cs, err := goversion.NewConstraint(s)
	if err != nil {
		return Constraints{}, fmt.Errorf("%w %q: %v", ErrInvalidConstraint, s, err)
	}
	c := Constraints{terms: terms, module: cs}
	// The installer parses cs.String(), not the text as written.
	pre, err := versions.MeetingConstraintsString(cs.String())
	if err != nil {
		stripped := versionRe.ReplaceAllStringFunc(cs.String(), func(m string) string { return strings.TrimPrefix(m, "v") })
		pre, err = versions.MeetingConstraintsString(stripped)
	}
	if err == nil {
		c.modulePrerelease = &pre
	}
	return c, nil
}

// versionRe finds versions in a constraint, with their "v" prefix, as the
// module installer does before its second parse.
var versionRe = regexp.MustCompile(goversion.VersionRegexpRaw)

// termRe splits one term into its operator and version, for String only.
var termRe = regexp.MustCompile(`^([=!<>~^]*)\s*(.*)$`)

// splitTerms refuses an empty constraint and returns its terms spelled
// "OP VERSION" (or a bare version).
func splitTerms(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("%w: empty; write e.g. \"~> 1.2\" or \">= 1.0.0, < 2.0.0\"", ErrInvalidConstraint)
	}
	var terms []string
	for _, t := range strings.Split(s, ",") {
		m := termRe.FindStringSubmatch(strings.TrimSpace(t))
		if m[1] == "" {
			terms = append(terms, m[2])
		} else {
			terms = append(terms, m[1]+" "+m[2])
		}
	}
	return terms, nil
}

// Allows reports whether OpenTofu would select version v (as the registry
// or a tag spells it) under c.
//
// Provider constraints: v must parse with go-versions' ParseVersion (three
// numbers, no "v") and be in versions.MeetingConstraints, so pre-releases
// match only when named exactly and build metadata follows that library.
//
// Module constraints: v is parsed by hashicorp/go-version (a "v" prefix is
// fine) and must satisfy Check; a pre-release must also be in the
// installer's go-versions set, so it is selected only when requested
// exactly.
func (c Constraints) Allows(v string) bool {
	if c.module != nil {
		return c.allowsModule(v)
	}
	pv, err := versions.ParseVersion(v)
	if err != nil {
		return false
	}
	if c.provider == nil {
		return pv.Prerelease == ""
	}
	return c.provider.Has(pv)
}

func (c Constraints) allowsModule(s string) bool {
	v, err := goversion.NewVersion(s)
	if err != nil {
		return false
	}
	if v.Prerelease() != "" {
		if c.modulePrerelease == nil {
			return false
		}
		pv, err := versions.ParseVersion(v.String())
		if err != nil || !c.modulePrerelease.Has(pv) {
			return false
		}
	}
	return c.module.Check(v)
}

// String returns the terms spelled "OP VERSION", joined by ", "
// (">= 5.80.0, < 6.0.0"); "" for the zero value.
func (c Constraints) String() string {
	return strings.Join(c.terms, ", ")
}
