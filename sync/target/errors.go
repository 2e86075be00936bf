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

// Refusals named as such, wrapped with the registry's own answer.
var (
	// ErrRepositoryMissing: the registry answered NAME_UNKNOWN, the
	// repository does not exist and is not created on push (Amazon ECR
	// without create-on-push).
	ErrRepositoryMissing = errors.New("repository does not exist")
	// ErrMediaTypeRefused: the registry refused a manifest for its media
	// or artifact types (Quay without ALLOWED_OCI_ARTIFACT_TYPES, GitLab's
	// allowlist).
	ErrMediaTypeRefused = errors.New("the registry refused the manifest's media types")
)

// ErrDeleteForbidden reports a registry that refuses deletes (the
// distribution registry answers 405 UNSUPPORTED unless its
// storage.delete.enabled is true; others answer 401, 403 or 405).
var ErrDeleteForbidden = errors.New("the registry forbids deleting manifests")
