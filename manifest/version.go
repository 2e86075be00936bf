package manifest

import (
	"regexp"

	"github.com/hashicorp/go-version"
)

var strictVersionRE = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)

// IsStrictVersion reports whether s is a version as the registry protocol
// requires it and OpenTofu reads version tags (after [VersionFromTag]):
// semver with three numbers and no "v" prefix.
func IsStrictVersion(s string) bool { return strictVersionRE.MatchString(s) }

// ParseStrictVersion parses a version that [IsStrictVersion] accepts.
func ParseStrictVersion(s string) (*version.Version, bool) {
	if !IsStrictVersion(s) {
		return nil, false
	}
	v, err := version.NewSemver(s)
	return v, err == nil
}
