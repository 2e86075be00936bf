package testtools

import "errors"

// ErrRepoRootNotFound means no directory from the start directory up to the
// file system root holds the go.mod of the main module.
var ErrRepoRootNotFound = errors.New("repository root not found")

// ErrBuildFailed means scripts/build-test-tools.sh exited non-zero or did not
// leave the expected binary behind.
var ErrBuildFailed = errors.New("building test tools failed")
