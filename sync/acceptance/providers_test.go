package acceptance

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/regclient/regclient/types/errs"
	"github.com/regclient/regclient/types/ref"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testtools"
)

// TestAcceptanceLockFileFirst is the property users care about most: a lock
// file made against the origin registry (both platforms' signed zh: hashes)
// verifies packages OpenTofu installs from our mirror, and the provider runs.
func TestAcceptanceLockFileFirst(t *testing.T) { eachTofu(t, scenarioLockFileFirst) }

func scenarioLockFileFirst(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	const version = "1.0.0"
	other := otherPlatform()
	w.addEcho(version, other)
	wantZH := []string{w.zh(version, currentPlatform), w.zh(version, other)}
	slices.Sort(wantZH)

	// Lock against the upstream, as a team does before it goes offline.
	work := w.workDir(version)
	w.runTofu(work, w.upstreamCLIConfig(), "providers", "lock", "-platform="+currentPlatform, "-platform="+other)
	locked := readLock(t, work)[address]
	if locked.Version != version || !slices.Equal(zhHashes(locked.Hashes), wantZH) {
		t.Fatalf("tofu providers lock recorded %s %+v, want version %s with zh: hashes %v", address, locked, version, wantZH)
	}

	plan := w.writePlan("= "+version, currentPlatform, other)
	w.sync(plan)

	// Install from the mirror only: the CLI config is exactly what tofurc
	// prints, with no host block, and the upstream must see no request.
	cliConfig := w.mirrorCLIConfig(plan, "")
	upBefore, regBefore := w.up.Counts(), w.reg.Counts()
	out := w.initAndApply(work, cliConfig)
	if want := fmt.Sprintf("Installed %s v%s", source, version); !strings.Contains(out, want) {
		t.Fatalf("tofu init output lacks %q", want)
	}
	if up := w.up.Counts(); up != upBefore {
		t.Fatalf("tofu reached the upstream while installing from the mirror: %+v, before %+v", up, upBefore)
	}
	if reg := w.reg.Counts(); reg.BlobGet <= regBefore.BlobGet || reg.ManifestGet <= regBefore.ManifestGet {
		t.Fatalf("tofu downloaded nothing from the registry: %+v, before %+v", reg, regBefore)
	}
	after := w.assertInstalled(work, version)
	if got := zhHashes(after.Hashes); !slices.Equal(got, wantZH) {
		t.Fatalf("after init the lock file's zh: hashes are %v, want the upstream's %v", got, wantZH)
	}

	// The control: the same install against a lock file that records only
	// another package's hash must be refused, or the check above proves
	// nothing.
	t.Run("foreign hash refused", func(t *testing.T) {
		w := w.sub(t)
		dir := w.workDir(version)
		writeFile(t, filepath.Join(dir, ".terraform.lock.hcl"), fmt.Sprintf(`provider %q {
  version     = %q
  constraints = %q
  hashes = [
    %q,
  ]
}
`, address, version, version, w.zh(version, other)))
		out, err := testtools.RunTofuErr(t, w.tofu, dir, w.tofuEnv(cliConfig), "init", "-input=false", "-no-color")
		if err == nil {
			t.Fatalf("tofu init accepted a package whose hash the lock file does not record:\n%s", out)
		}
		if !strings.Contains(out, "checksum") {
			t.Fatalf("tofu init failed, but not over the checksum:\n%s", out)
		}
	})
}

// TestAcceptanceVersionSelection mirrors several versions; OpenTofu lists
// the tags and picks the newest the configuration's constraint allows.
func TestAcceptanceVersionSelection(t *testing.T) { eachTofu(t, scenarioVersionSelection) }

func scenarioVersionSelection(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	for _, v := range []string{"1.0.0", "1.1.0", "2.0.0"} {
		w.addEcho(v)
	}
	plan := w.writePlan(">= 1.0.0", currentPlatform)
	w.sync(plan)
	cliConfig := w.mirrorCLIConfig(plan, "")

	tests := []struct {
		constraint string
		want       string
	}{
		{constraint: "~> 1.0", want: "1.1.0"},
		{constraint: "< 1.1.0", want: "1.0.0"},
		{constraint: ">= 1.0.0", want: "2.0.0"},
	}
	for _, tt := range tests {
		t.Run(tt.constraint, func(t *testing.T) {
			w := w.sub(t)
			dir := w.workDir(tt.constraint)
			w.initAndApply(dir, cliConfig)
			lock := w.assertInstalled(dir, tt.want)
			if zh := w.zh(tt.want, currentPlatform); !slices.Contains(lock.Hashes, zh) {
				t.Fatalf("lock file hashes %v lack the upstream's %s", lock.Hashes, zh)
			}
		})
	}
}

// TestAcceptanceBuildMetadata mirrors a version with semver build metadata,
// which OCI tags cannot spell: the tag is 1.2.0_acme.1 and OpenTofu must
// still find and install 1.2.0+acme.1.
func TestAcceptanceBuildMetadata(t *testing.T) { eachTofu(t, scenarioBuildMetadata) }

func scenarioBuildMetadata(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	const version, tag = "1.2.0+acme.1", "1.2.0_acme.1"
	w.addEcho("1.1.0")
	w.addEcho(version)
	plan := w.writePlan(">= 1.0.0", currentPlatform)
	w.sync(plan)

	if tags := w.tags("opentofu-providers/" + source); !slices.Contains(tags, tag) {
		t.Fatalf("registry tags %v lack %s", tags, tag)
	}
	dir := w.workDir(version)
	w.initAndApply(dir, w.mirrorCLIConfig(plan, ""))
	lock := w.assertInstalled(dir, version)
	if zh := w.zh(version, currentPlatform); !slices.Contains(lock.Hashes, zh) {
		t.Fatalf("lock file hashes %v lack the upstream's %s", lock.Hashes, zh)
	}
}

// tags lists repo's tags with an independent client holding the registry's
// credentials; a repository that does not exist has none.
func (w *world) tags(repo string) []string {
	w.t.Helper()
	r, err := ref.New(w.reg.Host + "/" + repo)
	if err != nil {
		w.t.Fatal(err)
	}
	tl, err := w.reg.Client().TagList(context.Background(), r)
	if err != nil {
		if errors.Is(err, errs.ErrNotFound) {
			return nil
		}
		w.t.Fatalf("listing tags of %s: %v", repo, err)
	}
	tags, err := tl.GetTags()
	if err != nil {
		w.t.Fatal(err)
	}
	return tags
}
