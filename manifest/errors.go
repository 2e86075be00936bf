package manifest

import "errors"

// Sentinel errors, wrapped with context by the functions that return them.
var (
	// ErrNotProviderIndex means a manifest is not an OpenTofu provider index
	// (wrong media type or artifact type): something else owns that tag.
	ErrNotProviderIndex = errors.New("not an OpenTofu provider index")
	// ErrInvalidProviderIndex means an OpenTofu provider index breaks the
	// contract in a way OpenTofu would refuse (bad entry, duplicate platform).
	ErrInvalidProviderIndex = errors.New("invalid OpenTofu provider index")
	// ErrNotModulePackage means a manifest is not an OpenTofu module package.
	ErrNotModulePackage = errors.New("not an OpenTofu module package")
	// ErrInvalidModulePackage means a module package manifest breaks the contract.
	ErrInvalidModulePackage = errors.New("invalid OpenTofu module package")
	// ErrTooLarge means a manifest exceeds the size OpenTofu accepts.
	ErrTooLarge = errors.New("manifest too large")
	// ErrUnsafePath means a module package entry would escape the package root.
	ErrUnsafePath = errors.New("unsafe path in module package")
)
