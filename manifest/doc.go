// Package manifest builds and checks the OCI artifacts OpenTofu reads: provider
// indexes with one image manifest per platform, module package manifests, and
// the provenance artifact that keeps a provider's signed SHA256SUMS next to its
// index. It is pure: no network, no registry, only bytes and descriptors.
//
// Every builder returns an [Artifact]: the exact JSON bytes to push and the
// descriptor computed from those bytes. Output is deterministic (fixed field
// order from the structs, platforms sorted, no timestamps), so the same
// upstream release yields the same digests on every run and every machine.
package manifest
