package engine

import "errors"

// ErrNoPlatforms means none of the wanted platforms could be mirrored for
// a version, so no index can be published for it. As in OpenTofu, a
// platform upstream does not offer is no failure: the executor reports
// this in a warning of an unchanged item, never as its Err.
var ErrNoPlatforms = errors.New("no wanted platform is offered upstream")
