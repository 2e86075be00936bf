package engine

import "errors"

// ErrNoPlatforms means none of the wanted platforms could be mirrored for
// a version, so no index can be published for it.
var ErrNoPlatforms = errors.New("no wanted platform is offered upstream")
