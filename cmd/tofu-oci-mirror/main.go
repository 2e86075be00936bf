// Command tofu-oci-mirror keeps an OCI registry stocked with OpenTofu
// providers and modules listed in a YAML plan file. Each command lives in
// its own file and only wires flags to the sync package and renders results.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

// Exit codes, documented in the README.
const (
	exitOK      = 0
	exitFailed  = 1
	exitPending = 2
)

func toolVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Writer:               stdout,
		ErrWriter:            stderr,
		Name:                 "tofu-oci-mirror",
		Usage:                "mirror OpenTofu providers and modules into an OCI registry",
		Version:              toolVersion(),
		HideVersion:          true,
		EnableBashCompletion: true,
		Commands: []*cli.Command{
			planCommand(),
			syncCommand(),
			tofurcCommand(),
			inventoryCommand(),
			exportCommand(),
			importCommand(),
			versionCommand(),
		},
		ExitErrHandler: func(*cli.Context, error) {}, // main decides the exit code
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := newApp(stdout, stderr).RunContext(ctx, args)
	if err == nil {
		return exitOK
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(stderr, "error:", msg)
		}
		return ec.ExitCode()
	}
	fmt.Fprintln(stderr, "error:", err)
	return exitFailed
}
