package config

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Functions in this package wrap them with the offending
// value, so callers test with errors.Is and show err.Error() to users.
var (
	// ErrInvalidPlan is matched by every *LoadError.
	ErrInvalidPlan = errors.New("invalid plan")
	// ErrInvalidPlatform reports a platform that is not OS_ARCH.
	ErrInvalidPlatform = errors.New("invalid platform")
	// ErrInvalidHostname reports a hostname that is not a DNS name with an
	// optional port.
	ErrInvalidHostname = errors.New("invalid hostname")
	// ErrInvalidProviderAddr reports a bad [HOSTNAME/]NAMESPACE/TYPE.
	ErrInvalidProviderAddr = errors.New("invalid provider source address")
	// ErrInvalidModuleAddr reports a bad [HOSTNAME/]NAMESPACE/NAME/SYSTEM.
	ErrInvalidModuleAddr = errors.New("invalid module source address")
	// ErrInvalidConstraint reports an unparsable version constraint.
	ErrInvalidConstraint = errors.New("invalid version constraint")
	// ErrInvalidTemplate reports a repository template with an unknown or
	// unterminated ${...} variable.
	ErrInvalidTemplate = errors.New("invalid repository template")
	// ErrInvalidRepository reports a rendered name that OCI registries refuse.
	ErrInvalidRepository = errors.New("invalid OCI repository name")
)

// Problem is one mistake in a plan file. Line and Column are 1-based; zero
// means the position is unknown (for example an empty file), and Error then
// leaves that part out.
type Problem struct {
	File         string
	Line, Column int
	Message      string
}

// Error formats the problem as "file:line:col: message", the form editors
// and CI logs turn into links.
func (p Problem) Error() string {
	var b strings.Builder
	file := p.File
	if file == "" {
		file = "<plan>"
	}
	b.WriteString(file)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
		if p.Column > 0 {
			fmt.Fprintf(&b, ":%d", p.Column)
		}
	}
	b.WriteString(": ")
	b.WriteString(p.Message)
	return b.String()
}

// LoadError lists every problem found in a plan file in one pass, ordered by
// position, so a user fixes them all before running again.
type LoadError struct {
	Problems []Problem
}

// Error joins the problems one per line.
func (e *LoadError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Is makes errors.Is(err, ErrInvalidPlan) true for any *LoadError.
func (e *LoadError) Is(target error) bool {
	return target == ErrInvalidPlan
}
