package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
)

// TestDemo is `make demo`: the whole flow, offline, against a signing test
// upstream and the CNCF distribution registry in-process. With -v it shows
// each command and what it printed; as part of `make test` it checks the
// flow ends with a complete mirror.
func TestDemo(t *testing.T) {
	e := newCLIEnv(t)
	for _, v := range []string{"3.2.0", "3.2.1", "3.2.2"} {
		e.up.AddProvider("hashicorp", "null", v, "linux_amd64", "darwin_arm64", "windows_amd64")
	}
	e.up.AddProvider("hashicorp", "random", "3.6.3", "linux_amd64", "darwin_arm64")
	e.writePlan(e.reg.Host, `platforms: [linux_amd64, darwin_arm64]
providers:
  - source: hashicorp/null
    versions: "~> 3.2.0"
  - source: hashicorp/random
    versions: "= 3.6.3"
    platforms: [linux_amd64]
`)
	var show io.Writer = io.Discard
	if testing.Verbose() {
		show = os.Stdout
	}
	plan, _ := os.ReadFile(e.plan)
	fmt.Fprintf(show, "\n=== Test upstream (signed releases) at %s, CNCF registry at %s\n=== mirror.yaml:\n%s\n", e.up.URL, e.reg.Host, plan)
	step := func(want int, args ...string) string {
		fmt.Fprintf(show, "\n$ tofu-oci-mirror %s\n", strings.Join(args, " "))
		out, errOut := e.mustRun(want, append(args, "--no-progress")...)
		fmt.Fprint(show, out)
		fmt.Fprint(show, indent(errOut))
		return out
	}
	step(exitPending, "plan", "-c", e.plan, "--detailed-exitcode")
	step(exitOK, "sync", "-c", e.plan)
	e.up.ResetCounts()
	out := step(exitOK, "sync", "-c", e.plan)
	c := e.up.Counts()
	fmt.Fprintf(show, "\n(second sync: %d package downloads, %d upstream requests in all)\n", c.Zip, c.Total)
	if c.Zip != 0 || !strings.Contains(out, "0 copied, 4 unchanged") {
		t.Fatalf("second sync was not a no-op: %s (%+v)", out, c)
	}
	step(exitOK, "plan", "-c", e.plan, "--detailed-exitcode")
	step(exitOK, "tofurc", "-c", e.plan)
}

func indent(s string) string {
	if s == "" {
		return ""
	}
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ") + "\n"
}
