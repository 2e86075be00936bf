package provenance

import (
	"strings"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/upstream"
)

// Policy is what this run trusts. The zero value is OpenTofu's default
// (see [upstream.SignaturePolicy]).
type Policy struct {
	// Signatures is how strictly OpenPGP signatures are judged.
	Signatures upstream.SignaturePolicy
}

// MayBeUnsigned reports whether the provider at address
// ("host/namespace/type") may come without a signature.
func (p Policy) MayBeUnsigned(address string) bool {
	host, _, _ := strings.Cut(address, "/")
	return p.Signatures.MayBeUnsigned(host)
}
