package provenance

import "errors"

// ErrProvenance means the provenance kept next to a provider index (the
// signed SHA256SUMS, its signature and key) no longer verifies, or does not
// cover a package the index holds.
var ErrProvenance = errors.New("stored provenance does not verify")
