package config

import (
	"fmt"
	"regexp"
	"strings"
)

// Template variables each kind of source offers.
var (
	providerTemplateVars = []string{"hostname", "namespace", "type"}
	moduleTemplateVars   = []string{"hostname", "namespace", "name", "system"}
)

// repositoryNameRe is the repository name grammar of the OCI distribution
// spec: path components of lower-case alphanumerics joined by ".", "_", "__"
// or any number of "-".
var repositoryNameRe = regexp.MustCompile(
	`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)

// maxRepositoryNameLen keeps names within what common registries accept
// (the distribution spec's reference grammar caps the whole name at 255).
const maxRepositoryNameLen = 255

// ValidRepositoryName reports whether s is a repository name an OCI registry
// must accept, e.g. "opentofu-providers/hashicorp/aws".
func ValidRepositoryName(s string) bool {
	return len(s) <= maxRepositoryNameLen && repositoryNameRe.MatchString(s)
}

// RenderProviderRepository expands ${hostname}, ${namespace} and ${type} in
// template for a. An empty Hostname renders as DefaultHostname. The error
// wraps ErrInvalidTemplate for an unknown or unterminated variable and
// ErrInvalidRepository when the result is not a valid repository name.
func RenderProviderRepository(template string, a ProviderAddr) (string, error) {
	return renderRepository(template, providerTemplateVars, map[string]string{
		"hostname":  strings.ToLower(orDefaultHost(a.Hostname)),
		"namespace": a.Namespace,
		"type":      a.Type,
	})
}

// RenderModuleRepository expands ${hostname}, ${namespace}, ${name} and
// ${system} in template for a. Values are lower-cased first, because module
// namespaces such as "Azure" are mixed-case but repository names are not; an
// empty Hostname renders as DefaultHostname. Errors are as for
// RenderProviderRepository.
func RenderModuleRepository(template string, a ModuleAddr) (string, error) {
	return renderRepository(template, moduleTemplateVars, map[string]string{
		"hostname":  strings.ToLower(orDefaultHost(a.Hostname)),
		"namespace": strings.ToLower(a.Namespace),
		"name":      strings.ToLower(a.Name),
		"system":    strings.ToLower(a.System),
	})
}

func renderRepository(template string, known []string, vars map[string]string) (string, error) {
	var b strings.Builder
	rest := template
	for {
		before, after, found := strings.Cut(rest, "${")
		b.WriteString(before)
		if !found {
			break
		}
		name, tail, closed := strings.Cut(after, "}")
		if !closed || strings.ContainsAny(name, "${") {
			return "", fmt.Errorf("%w %q: unterminated \"${\"", ErrInvalidTemplate, template)
		}
		value, ok := vars[name]
		if !ok {
			return "", fmt.Errorf("%w %q: unknown variable ${%s}; known: %s", ErrInvalidTemplate, template, name, formatVars(known))
		}
		b.WriteString(value)
		rest = tail
	}
	name := b.String()
	if !ValidRepositoryName(name) {
		return "", fmt.Errorf("%w %q rendered from template %q: want lower-case letters and digits, separated by '.', '_', '__' or dashes, in components joined by '/', at most %d characters",
			ErrInvalidRepository, name, template, maxRepositoryNameLen)
	}
	return name, nil
}

func formatVars(names []string) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "${" + n + "}"
	}
	return strings.Join(out, " ")
}
