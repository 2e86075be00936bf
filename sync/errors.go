package sync

import "errors"

// Sentinel errors, wrapped with context naming the provider, version,
// platform or repository concerned.
var (
	// ErrConflict means a version tag in the target holds something that is
	// not an OpenTofu artifact of the expected kind; it is never overwritten.
	ErrConflict = errors.New("tag holds a foreign artifact")
	// ErrTarget wraps failures talking to the target registry or layout.
	ErrTarget = errors.New("target registry")
	// ErrUpstream wraps failures talking to the upstream registry.
	ErrUpstream = errors.New("upstream")
	// ErrNoPlatforms means none of the wanted platforms could be mirrored
	// for a version, so no index can be published for it.
	ErrNoPlatforms = errors.New("no wanted platform is offered upstream")
	// ErrProvenance means the provenance kept next to a provider index (the
	// signed SHA256SUMS, its signature and key) no longer verifies, or does
	// not cover a package the index holds.
	ErrProvenance = errors.New("stored provenance does not verify")
	// ErrInterrupted means the run was cancelled before an item finished.
	ErrInterrupted = errors.New("interrupted")
)
