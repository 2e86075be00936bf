//go:build tools

// Package tofu pins the OpenTofu CLI that the acceptance tests run. It is a
// separate module so the main go.mod does not carry OpenTofu's dependencies.
package tofu

import _ "github.com/opentofu/opentofu/cmd/tofu"
