// Package bundle carries a mirror across an air gap: [TakeInventory]
// records what the internal registry holds, [Export] writes a tar holding
// only what that inventory lacks (an OCI image layout plus metadata), and
// [Import] verifies such a tar and publishes it, tags last.
//
// Content is keyed by logical identity (provider or module address and
// version), not by repository name: the importing side maps identities to
// repositories with its own plan's target, so one bundle can serve two
// registries laid out differently.
package bundle
