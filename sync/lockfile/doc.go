// Package lockfile writes OpenTofu dependency lock files
// (.terraform.lock.hcl) from what an OCI mirror holds, with no access to
// any upstream registry: it selects each provider's version as OpenTofu
// does, computes the h1: hash of every platform's package as OpenTofu does
// (golang.org/x/mod/sumdb/dirhash Hash1 over the unpacked zip), takes the
// zh: hashes from the signed SHA256SUMS kept next to the index (verified
// again), and writes the file in OpenTofu's own layout.
//
// The rules come from OpenTofu's internal/depsfile (file format and
// ordering), internal/getproviders/hash.go (h1: and zh:), types.go
// (constraints, with github.com/apparentlymart/go-versions) and
// internal/command/providers_lock.go (zh: for every SHA256SUMS line).
package lockfile
