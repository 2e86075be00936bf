package config

import (
	"fmt"
	"math"
	"regexp"
	"strings"

	version "github.com/hashicorp/go-version"
)

// Constraints is a parsed OpenTofu version constraint set: comma-separated
// constraints that must all hold. The zero value has no constraints, so it
// allows every release and no pre-release.
type Constraints struct {
	list []constraint
}

// constraint is one "OP VERSION" term.
type constraint struct {
	op   string // "", "=", "!=", ">", ">=", "<", "<=", "~>"; "" is a bare version, meaning "="
	text string // the version as written
	v    *version.Version
	// upper is the exclusive upper bound of "~>": ~> 1.2 means < 2.0.0 and
	// ~> 1.2.3 means < 1.3.0.
	upper *version.Version
}

// constraintVersionRe is the version part of a constraint: one to three
// numbers, then an optional pre-release and build metadata. OpenTofu refuses
// wildcards and a "v" prefix here, and so do we.
var constraintVersionRe = regexp.MustCompile(
	`^([0-9]+)(\.[0-9]+)?(\.[0-9]+)?` +
		`(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?` +
		`(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$`)

// tooManyPartsRe catches 1.2.3.4, which go-version would accept.
var tooManyPartsRe = regexp.MustCompile(`^[0-9]+(\.[0-9]+){3,}`)

// wildcardRe catches 1.x and 1.2.X, which OpenTofu refuses too.
var wildcardRe = regexp.MustCompile(`^([0-9]+\.)*[xX]($|[.+-])`)

// operators in the order they must be tried: longest first.
var operators = []string{">=", "<=", "!=", "~>", "=>", "=<", ">", "<", "=", "^", "~"}

// ParseConstraints parses OpenTofu's constraint syntax: comma-separated terms
// "OP VERSION" with OP one of =, !=, >, >=, <, <=, ~> (none means =).
// Leaving out a version's minor or patch number means zero, except that
// "~>" uses the number of parts given to pick its upper bound.
func ParseConstraints(s string) (Constraints, error) {
	if strings.TrimSpace(s) == "" {
		return Constraints{}, fmt.Errorf("%w: empty; write e.g. \"~> 1.2\" or \">= 1.0.0, < 2.0.0\"", ErrInvalidConstraint)
	}
	var cs Constraints
	for _, term := range strings.Split(s, ",") {
		c, err := parseConstraint(strings.TrimSpace(term))
		if err != nil {
			return Constraints{}, fmt.Errorf("%w %q: %s", ErrInvalidConstraint, s, err)
		}
		cs.list = append(cs.list, c)
	}
	return cs, nil
}

// parseConstraint parses one trimmed term; its errors are bare reasons that
// ParseConstraints wraps.
func parseConstraint(term string) (constraint, error) {
	if term == "" {
		return constraint{}, fmt.Errorf("empty term between commas")
	}
	var c constraint
	for _, op := range operators {
		if strings.HasPrefix(term, op) {
			c.op = op
			break
		}
	}
	switch c.op {
	case "=>", "=<":
		return c, fmt.Errorf("unknown operator %q; did you mean %q?", c.op, string([]byte{c.op[1], c.op[0]}))
	case "^", "~":
		return c, fmt.Errorf("unknown operator %q; OpenTofu has =, !=, >, >=, <, <=, ~>", c.op)
	}
	c.text = strings.TrimSpace(term[len(c.op):])
	switch {
	case c.text == "":
		return c, fmt.Errorf("missing version after %q", c.op)
	case c.text[0] == 'v' || c.text[0] == 'V':
		return c, fmt.Errorf("a \"v\" prefix is not allowed on versions: write %q", c.text[1:])
	case strings.Contains(c.text, "*") || wildcardRe.MatchString(c.text):
		return c, fmt.Errorf("wildcards are not supported; leave out the parts that may vary, e.g. \"~> 1.2\"")
	case tooManyPartsRe.MatchString(c.text):
		return c, fmt.Errorf("version %q has more than three numbered parts (major.minor.patch)", c.text)
	}
	m := constraintVersionRe.FindStringSubmatch(c.text)
	if m == nil {
		return c, fmt.Errorf("%q is not a version (want MAJOR[.MINOR[.PATCH]][-PRERELEASE][+BUILD])", c.text)
	}
	v, err := version.NewVersion(c.text)
	if err != nil {
		return c, fmt.Errorf("version %q: %v", c.text, err)
	}
	c.v = v
	if c.op == "~>" {
		segs := v.Segments64()
		major, minor := segs[0], segs[1]
		if major == math.MaxInt64 || minor == math.MaxInt64 {
			return c, fmt.Errorf("version %q is too large", c.text)
		}
		bound := fmt.Sprintf("%d.0.0", major+1)
		if m[3] != "" { // three parts given: only the patch may grow
			bound = fmt.Sprintf("%d.%d.0", major, minor+1)
		}
		if c.upper, err = version.NewVersion(bound); err != nil {
			return c, fmt.Errorf("version %q: %v", c.text, err)
		}
	}
	return c, nil
}

// Allows reports whether v satisfies every constraint. Following OpenTofu, a
// pre-release version is allowed only when some constraint names it exactly
// (= or a bare version); ranges such as ">= 1.0.0" or "~> 1.2" never let a
// pre-release in on their own. A nil v is never allowed.
func (c Constraints) Allows(v *version.Version) bool {
	if v == nil {
		return false
	}
	named := false
	for _, k := range c.list {
		if !k.allows(v) {
			return false
		}
		if k.op == "" || k.op == "=" {
			named = true // k.allows(v) already proved it equal
		}
	}
	return v.Prerelease() == "" || named
}

// allows applies one term by semver precedence (build metadata ignored
// unless an exact term names it).
func (k constraint) allows(v *version.Version) bool {
	switch k.op {
	case "", "=":
		return k.equal(v)
	case "!=":
		return !k.equal(v)
	case ">":
		return v.Compare(k.v) > 0
	case ">=":
		return v.Compare(k.v) >= 0
	case "<":
		return v.Compare(k.v) < 0
	case "<=":
		return v.Compare(k.v) <= 0
	case "~>":
		return v.Compare(k.v) >= 0 && v.Compare(k.upper) < 0
	}
	return false
}

func (k constraint) equal(v *version.Version) bool {
	return v.Compare(k.v) == 0 && (k.v.Metadata() == "" || k.v.Metadata() == v.Metadata())
}

// String returns the constraints in a canonical spelling, terms joined by
// ", " (">= 5.80.0, < 6.0.0"); "" for the zero value.
func (c Constraints) String() string {
	terms := make([]string, len(c.list))
	for i, k := range c.list {
		if k.op == "" {
			terms[i] = k.text
		} else {
			terms[i] = k.op + " " + k.text
		}
	}
	return strings.Join(terms, ", ")
}
