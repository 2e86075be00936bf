package doctor

import (
	"errors"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/target"
)

var (
	// ErrNotRegistry is returned by Run for a target that is an OCI layout.
	ErrNotRegistry = errors.New("doctor probes registries only")
	// ErrInvalidRepository is returned by Run for a scratch repository
	// name the OCI distribution spec forbids.
	ErrInvalidRepository = errors.New("invalid scratch repository")
)

// refusalOf parses a registry's refusal (see [target.RefusalOf]).
func refusalOf(err error) refusal { return target.RefusalOf(err) }

// refusal is [target.Refusal] under a name that does not clash with the
// prober's target field.
type refusal = target.Refusal
