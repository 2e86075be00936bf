//go:build tools

// Package tofu pins the newest OpenTofu 1.12.x CLI that the acceptance tests run next to testdata/tofu (1.10.x). It is a
// separate module so the main go.mod does not carry OpenTofu's dependencies.
package tofu

import _ "github.com/opentofu/opentofu/cmd/tofu"
