package bundle

import "errors"

// Sentinel errors, wrapped with the entry, part or artifact concerned.
var (
	// ErrFormat means a bundle, part manifest or inventory is not one this
	// version reads (unknown format version, missing metadata, bad JSON).
	ErrFormat = errors.New("unsupported bundle format")
	// ErrCorrupt means bundle content disagrees with its metadata: a digest
	// or size mismatch, a truncated tar, a part whose sha256 differs.
	ErrCorrupt = errors.New("corrupt bundle")
	// ErrUnsafeEntry means a tar entry has a path that escapes the bundle
	// (absolute, "..") or is not a regular file (a link, a device).
	ErrUnsafeEntry = errors.New("unsafe bundle entry")
	// ErrBaseMissing means the bundle expects blobs in the target that it
	// lacks: the baseline was wrong or an earlier bundle was never imported.
	ErrBaseMissing = errors.New("bundle base missing from target")
	// ErrMissingPart means a part listed by the part manifest is absent.
	ErrMissingPart = errors.New("bundle part missing")
	// ErrProvenance means the signed SHA256SUMS carried with a provider no
	// longer verifies, or does not cover its packages.
	ErrProvenance = errors.New("provenance check failed")
)

// Trust failures of a bundle as a whole, and of artifacts in it.
var (
	// ErrUnsignedBundle means a bundle has no signature that could be
	// checked (none beside it, or no trust.bundle_keys), and
	// --allow-unsigned-bundle was not given.
	ErrUnsignedBundle = errors.New("unsigned bundle")
	// ErrBundleSignature means the bundle's signature does not verify with
	// any key of trust.bundle_keys.
	ErrBundleSignature = errors.New("bundle signature does not verify")
	// ErrNotInPlan means the bundle carries an artifact the importing
	// side's plan does not select (address, version constraint, platform).
	ErrNotInPlan = errors.New("not selected by this plan")
	// ErrUnsafeModule means a module package breaks the archive safety
	// rules sync applies (paths escaping, links leaving the package, size
	// or ratio limits).
	ErrUnsafeModule = errors.New("unsafe module package")
)
