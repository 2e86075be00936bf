package bundle

import "regexp"

var versionRE = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)

// isVersion reports whether s is a strict semver version, as OpenTofu
// requires of version tags.
func isVersion(s string) bool { return versionRE.MatchString(s) }
