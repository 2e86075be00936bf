package engine

import (
	"fmt"
	"strings"
)

// named prefixes err with the thing it concerns, unless the error already
// starts by naming it (the upstream client names what it was asked for).
func named(thing string, err error) error {
	if strings.HasPrefix(err.Error(), thing+":") {
		return err
	}
	return fmt.Errorf("%s: %w", thing, err)
}
