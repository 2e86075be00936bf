// Package provenance is the one place that decides whether a provider
// package is the one its author signed: it judges a release's signed
// SHA256SUMS under a [Policy], builds the referrer artifact that keeps the
// signed file, its signature and key next to a provider index, and checks
// such an artifact again offline. Sync, verify, export and import all go
// through it, so they cannot disagree about what is trusted.
package provenance
