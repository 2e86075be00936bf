package item

import "errors"

// Sentinel errors shared by every stage of a run, wrapped with the item
// they concern.
var (
	// ErrConflict means a version tag in the target holds something that is
	// not an OpenTofu artifact of the expected kind; it is never overwritten.
	ErrConflict = errors.New("tag holds a foreign artifact")
	// ErrInterrupted means the run was cancelled before an item finished.
	ErrInterrupted = errors.New("interrupted")
)
