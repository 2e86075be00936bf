// Package acceptance answers our users' one question, "does `tofu init`
// work from my mirror?", with the real things: the tofu-oci-mirror CLI run
// as a user runs it, each OpenTofu CLI pinned in testdata/tofu (1.10.x, the
// oldest with OCI support) and testdata/tofu-1.12 (newest release), a real
// provider binary (testdata/provider-echo), the CNCF distribution registry
// over TLS (with and without htpasswd), and a test upstream that signs its
// SHA256SUMS with a real OpenPGP key.
//
// Nothing here reads our own artifacts back with our own code: OpenTofu is
// the judge. A scenario passes only when OpenTofu installs from the mirror,
// verifies the package against its lock file and runs the provider.
//
// The tests never skip. When tofu or the provider cannot be built, they fail
// with the build's output, because a skipped acceptance test in CI proves
// nothing. `make e2e` runs only this package.
package acceptance

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"testing"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testupstream"
)

// cliPackage is the command built once per test run and executed by every
// scenario.
const cliPackage = "github.com/tofu-oci-mirror/tofu-oci-mirror/cmd/tofu-oci-mirror"

// mirrorBin is the tofu-oci-mirror binary TestMain built.
var mirrorBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "tofu-oci-mirror-acceptance-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "acceptance: temp dir for the CLI:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	mirrorBin = filepath.Join(dir, "tofu-oci-mirror")
	// Built by import path, so it works from this package's directory (where
	// go test runs us) without knowing where the repository root is.
	build := exec.Command("go", "build", "-o", mirrorBin, cliPackage)
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "acceptance: go build %s: %v\n%s", cliPackage, err, out)
		return 1
	}
	// The echo provider speaks plugin protocol 6; the upstream says so, as
	// a real registry would for a framework provider.
	testupstream.ProviderProtocols = []string{"6.0"}
	return m.Run()
}
