package lockfile

import (
	"errors"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/provenance"
)

// Sentinel errors, wrapped with the file, provider, version or platform
// concerned; test for them with errors.Is.
var (
	// ErrSyntax means a lock file does not parse or breaks OpenTofu's rules
	// for it (non-normalised address, version or constraints).
	ErrSyntax = errors.New("invalid lock file")
	// ErrConstraint means a version constraint does not parse.
	ErrConstraint = errors.New("invalid version constraint")
	// ErrUnsatisfiable means the target holds no version of a provider
	// that meets its constraints (or not the locked one).
	ErrUnsatisfiable = errors.New("no version in the target meets the constraints")
	// ErrMissingPlatform means a requested platform is not in the index of
	// the selected version.
	ErrMissingPlatform = errors.New("platform missing from the mirror")
	// ErrUnsafeArchive means a provider zip would unpack outside its
	// directory, holds something other than files and directories, or is
	// larger unpacked than the limits allow (a zip bomb).
	ErrUnsafeArchive = errors.New("unsafe provider archive")
	// ErrProvenance means a stored provenance (signed SHA256SUMS) does not
	// verify under the run's trust policy or does not list a package the
	// index holds. It is [provenance.ErrProvenance], so errors from the
	// policy's checks (and verify's, and import's) match it too.
	ErrProvenance = provenance.ErrProvenance
	// ErrTarget wraps failures reading the target.
	ErrTarget = errors.New("target")
)
