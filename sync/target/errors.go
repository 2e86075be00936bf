package target

import "errors"

// Sentinel errors, wrapped with the repository, digest or tag concerned.
var (
	// ErrTarget wraps failures talking to the target registry or layout.
	ErrTarget = errors.New("target registry")
	// ErrTargetDown marks items not attempted because the target had
	// already proved unreachable in this run.
	ErrTargetDown = errors.New("target unreachable: not attempted")
)
