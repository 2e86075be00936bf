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

// ErrDeleteForbidden reports a registry that refuses deletes (the
// distribution registry answers 405 UNSUPPORTED unless its
// storage.delete.enabled is true; others answer 401, 403 or 405).
var ErrDeleteForbidden = errors.New("the registry forbids deleting manifests")
