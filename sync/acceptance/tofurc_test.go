package acceptance

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The second upstream hostname of the two-host scenario. The test upstream
// answers for both: its providers are keyed by namespace and type, and the
// plan's (and tofu's) host blocks point both hostnames at it.
const (
	secondHost      = "registry.example.com"
	secondNamespace = "beta"
	secondAddress   = secondHost + "/" + secondNamespace + "/" + ptype
)

// TestAcceptanceTofurcTwoHosts mirrors one provider from each of two
// upstream hostnames and has real tofu install both through exactly what
// `tofu-oci-mirror tofurc` prints: OpenTofu refuses one oci_mirror block
// for two hostnames when the template has no ${hostname}, so this fails
// unless tofurc writes a block per host.
func TestAcceptanceTofurcTwoHosts(t *testing.T) { eachTofu(t, scenarioTofurcTwoHosts) }

func scenarioTofurcTwoHosts(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	const version = "1.0.0"
	w.addEcho(version)
	w.up.AddProviderZip(secondNamespace, ptype, version, currentPlatform, echoZip(t, version))

	plan := w.writePlan("= "+version, currentPlatform)
	svc := w.up.Services()["providers.v1"]
	b, err := os.ReadFile(plan)
	if err != nil {
		t.Fatal(err)
	}
	twoHosts := strings.Replace(string(b), "platforms:", fmt.Sprintf("    %s:\n      services:\n        providers.v1: %q\nplatforms:", secondHost, svc), 1)
	// The second provider goes at the end of the providers list, before
	// the trust section the plan ends with.
	twoHosts = strings.Replace(twoHosts, "\ntrust:\n", fmt.Sprintf("\n  - source: %s\n    versions: %q\ntrust:\n", secondAddress, "= "+version), 1)
	writeFile(t, plan, twoHosts)
	w.sync(plan)

	rc := w.mustMirror(0, nil, "tofurc", "-c", plan)
	if n := strings.Count(rc.stdout, "oci_mirror {"); n != 2 {
		t.Fatalf("tofurc printed %d oci_mirror blocks for two hosts, want 2:\n%s", n, rc.stdout)
	}
	cliConfig := filepath.Join(t.TempDir(), "mirror.tofurc")
	writeFile(t, cliConfig, rc.stdout)

	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "main.tf"), fmt.Sprintf(`terraform {
  required_providers {
    echo = {
      source  = %q
      version = %q
    }
    echo2 = {
      source  = %q
      version = %q
    }
  }
}

data "echo" "one" {
  input = "one"
}

data "echo" "two" {
  provider = echo2
  input    = "two"
}

output "greeting" {
  value = "${data.echo.one.output}+${data.echo.two.output}"
}
`, source, version, secondAddress, version))
	upBefore := w.up.Counts()
	out := w.runTofu(dir, cliConfig, "init", "-input=false")
	if strings.Contains(out, "problems with the CLI configuration") {
		t.Fatalf("tofu found problems in the printed CLI configuration:\n%s", out)
	}
	w.runTofu(dir, cliConfig, "apply", "-auto-approve", "-input=false")
	if got := w.runTofu(dir, cliConfig, "output", "-raw", "greeting"); !strings.HasSuffix(got, "one+two") {
		t.Fatalf("tofu output -raw greeting = %q, want one+two", got)
	}
	if up := w.up.Counts(); up != upBefore {
		t.Fatalf("tofu reached the upstream while installing from the mirror: %+v, before %+v", up, upBefore)
	}
	lock := readLock(t, dir)
	for _, a := range []string{address, secondAddress} {
		if lock[a].Version != version {
			t.Fatalf(".terraform.lock.hcl: %s is %+v, want version %s", a, lock[a], version)
		}
	}
}
