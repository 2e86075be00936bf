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
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

// Exit codes, documented in the README.
const (
	exitOK      = 0
	exitFailed  = 1
	exitPending = 2
	exitLocked  = 3
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
		Commands: withExamples([]*cli.Command{
			planCommand(),
			syncCommand(),
			verifyCommand(),
			doctorCommand(),
			tofurcCommand(),
			inventoryCommand(),
			exportCommand(),
			importCommand(),
			lockCommand(),
			scanCommand(),
			keysCommand(),
			pruneCommand(),
			versionCommand(),
		}),
		ExitErrHandler: func(*cli.Context, error) {}, // main decides the exit code
	}
}

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		// No new work starts; in-flight transfers stop and stay untagged.
		fmt.Fprintf(stderrNow(), "tofu-oci-mirror: %s: stopping; nothing half-done is tagged, the next run completes the work (signal again to exit at once)\n", s)
		cancel()
		<-sigs
		os.Exit(exitFailed)
	}()
	stopProfile := startProfile()
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	cancel()
	stopProfile()
	os.Exit(code)
}

// run executes the command line and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	app.Metadata = map[string]any{"start": time.Now()}
	if code, handled := unknownCommand(app, args, stderr); handled {
		return code
	}
	err := app.RunContext(ctx, flagsFirst(app, args))
	if fs, ok := app.Metadata[exitFuncsKey].([]func()); ok {
		for _, f := range fs {
			f()
		}
	}
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

// flagsFirst moves a command's flags before its positional arguments:
// urfave/cli stops reading flags at the first argument, but people type
// "import -c mirror.yaml bundle.tar --no-progress".
func flagsFirst(app *cli.App, args []string) []string {
	if len(args) < 3 {
		return args
	}
	cmd := app.Command(args[1])
	if cmd == nil {
		return args
	}
	head := 2
	if sub := cmd.Command(args[2]); sub != nil {
		cmd, head = sub, 3 // "keys export -c plan DIR"
	}
	takesValue := map[string]bool{}
	for _, f := range cmd.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, name := range f.Names() {
			takesValue[name] = !isBool
		}
	}
	var flags, positional []string
	rest := args[head:]
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			positional = append(positional, rest[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			positional = append(positional, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if !strings.Contains(name, "=") && takesValue[name] && i+1 < len(rest) {
			i++
			flags = append(flags, rest[i])
		}
	}
	out := append(slices.Clone(args[:head]), flags...)
	if len(positional) > 0 {
		out = append(append(out, "--"), positional...)
	}
	return out
}
