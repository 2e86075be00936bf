package acceptance

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/regclient/regclient"
	"github.com/regclient/regclient/types/descriptor"
	rcmanifest "github.com/regclient/regclient/types/manifest"
	"github.com/regclient/regclient/types/ref"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testpgp"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
)

// lockWorld mirrors acme/echo 1.0.0 and 1.1.0 for the current platform and
// one other, signed upstream, and returns the plan.
func lockWorld(t *testing.T) (*world, string) {
	t.Helper()
	w := newWorld(t)
	for _, v := range []string{"1.0.0", "1.1.0"} {
		w.addEcho(v, otherPlatform())
	}
	plan := w.writePlan(">= 1.0.0", currentPlatform, otherPlatform())
	w.sync(plan)
	return w, plan
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestAcceptanceLockOracle is the oracle for `lock`: for the same
// configuration, the lock file our command writes from the mirror alone
// is the one real `tofu providers lock -platform=A -platform=B` writes
// against the upstream (same version, same hashes, same bytes), and
// `tofu init -lockfile=readonly` from the mirror accepts it unchanged.
func TestAcceptanceLockOracle(t *testing.T) { eachTofu(t, scenarioLockOracle) }

func scenarioLockOracle(t *testing.T) {
	t.Parallel()
	w, plan := lockWorld(t)
	const constraint = "~> 1.0"

	theirs := w.workDir(constraint)
	w.runTofu(theirs, w.upstreamCLIConfig(), "providers", "lock", "-platform="+currentPlatform, "-platform="+otherPlatform())
	tofuLock := readFile(t, filepath.Join(theirs, ".terraform.lock.hcl"))

	ours := w.workDir(constraint)
	upBefore, regBefore := w.up.Counts(), w.reg.Counts()
	w.mustMirror(0, nil, "lock", "-c", plan, "--platform", currentPlatform, "--platform", otherPlatform(), ours)
	if up := w.up.Counts(); up != upBefore {
		t.Fatalf("lock reached the upstream: %+v, before %+v", up, upBefore)
	}
	// Reads only, and each package once: two zips and the provenance's
	// three layers; the index, two platform manifests, the referrers
	// fallback tag (distribution has no referrers API: one more request,
	// counted as Other, gets its 404) and the provenance manifest; one
	// tag list.
	reg := w.reg.Counts()
	if reg.Pushes() != regBefore.Pushes() || reg.BlobGet-regBefore.BlobGet != 5 || reg.ManifestGet-regBefore.ManifestGet != 5 || reg.TagList-regBefore.TagList != 1 {
		t.Fatalf("lock cost %+v, before %+v; want no push, 5 blob GETs, 5 manifest GETs, 1 tag list", reg, regBefore)
	}
	ourLock := readFile(t, filepath.Join(ours, ".terraform.lock.hcl"))
	t.Logf("tofu providers lock wrote:\n%s\ntofu-oci-mirror lock wrote:\n%s", tofuLock, ourLock)

	want, got := readLock(t, theirs)[address], readLock(t, ours)[address]
	if got.Version != "1.1.0" || got.Version != want.Version {
		t.Fatalf("version: ours %s, tofu's %s, want 1.1.0", got.Version, want.Version)
	}
	if !slices.Equal(got.Hashes, want.Hashes) {
		t.Fatalf("hashes differ:\nours: %v\ntofu: %v", got.Hashes, want.Hashes)
	}
	if n := strings.Count(ourLock, `"h1:`); n != 2 {
		t.Fatalf("want an h1: hash per platform (2), got %d", n)
	}
	if ourLock != tofuLock {
		t.Fatalf("lock files differ byte for byte:\nours:\n%s\ntofu's:\n%s", ourLock, tofuLock)
	}
	// Again: nothing to change.
	w.mustMirror(0, nil, "lock", "-c", plan, "--platform", currentPlatform, "--platform", otherPlatform(), ours)
	if again := readFile(t, filepath.Join(ours, ".terraform.lock.hcl")); again != ourLock {
		t.Fatalf("a second lock changed the file:\n%s", again)
	}

	w.runTofu(ours, w.mirrorCLIConfig(plan, ""), "init", "-input=false", "-lockfile=readonly")
	if after := readFile(t, filepath.Join(ours, ".terraform.lock.hcl")); after != ourLock {
		t.Fatalf("tofu init -lockfile=readonly changed the lock file:\n%s", after)
	}
	w.assertInstalled(ours, "1.1.0")
}

// TestAcceptanceLockKeepsAndUpgrades: a lock on an older version that still
// meets the constraints is kept (and gains the other platform's hashes);
// -upgrade moves it to the newest, as tofu init -upgrade would.
func TestAcceptanceLockKeepsAndUpgrades(t *testing.T) { eachTofu(t, scenarioLockKeepsAndUpgrades) }

func scenarioLockKeepsAndUpgrades(t *testing.T) {
	t.Parallel()
	w, plan := lockWorld(t)
	dir := w.workDir("~> 1.0")
	// An older lock, as tofu init made it on one machine.
	writeFile(t, filepath.Join(dir, ".terraform.lock.hcl"), fmt.Sprintf(`provider %q {
  version     = "1.0.0"
  constraints = "~> 1.0"
  hashes = [
    %q,
  ]
}
`, address, w.zh("1.0.0", currentPlatform)))

	w.mustMirror(0, nil, "lock", "-c", plan, dir)
	kept := readLock(t, dir)[address]
	if kept.Version != "1.0.0" {
		t.Fatalf("lock moved the locked version to %s; it still meets ~> 1.0 and must stay 1.0.0", kept.Version)
	}
	for _, p := range []string{currentPlatform, otherPlatform()} {
		if !slices.Contains(kept.Hashes, w.zh("1.0.0", p)) {
			t.Fatalf("kept lock lacks %s's zh: hash: %v", p, kept.Hashes)
		}
	}
	w.runTofu(dir, w.mirrorCLIConfig(plan, ""), "init", "-input=false", "-lockfile=readonly")
	w.assertInstalled(dir, "1.0.0")

	w.mustMirror(0, nil, "lock", "-c", plan, "-upgrade", dir)
	up := readLock(t, dir)[address]
	if up.Version != "1.1.0" {
		t.Fatalf("-upgrade left version %s, want 1.1.0", up.Version)
	}
	if slices.Contains(up.Hashes, w.zh("1.0.0", currentPlatform)) {
		t.Fatalf("-upgrade kept 1.0.0's hash: %v", up.Hashes)
	}
}

// TestAcceptanceLockOtherBlocks: a locked provider the configuration no
// longer requires, and the mirror does not hold, keeps its block as it was,
// with a warning; the required one is locked beside it.
func TestAcceptanceLockOtherBlocks(t *testing.T) { eachTofu(t, scenarioLockOtherBlocks) }

func scenarioLockOtherBlocks(t *testing.T) {
	t.Parallel()
	w, plan := lockWorld(t)
	dir := w.workDir("~> 1.0")
	const foreign = `provider "example.com/zeta/alpha" {
  version = "0.1.0"
  hashes = [
    "zh:0000000000000000000000000000000000000000000000000000000000000000",
  ]
}`
	writeFile(t, filepath.Join(dir, ".terraform.lock.hcl"), foreign+"\n")
	run := w.mustMirror(0, nil, "lock", "-c", plan, dir)
	if !strings.Contains(run.stderr, "example.com/zeta/alpha") {
		t.Fatalf("no warning about the provider the mirror lacks:\n%s", run.stderr)
	}
	got := readFile(t, filepath.Join(dir, ".terraform.lock.hcl"))
	if !strings.Contains(got, foreign) || readLock(t, dir)[address].Version != "1.1.0" {
		t.Fatalf("want the other block unchanged and %s locked:\n%s", address, got)
	}
}

// TestAcceptanceLockRefusals: a platform the mirror lacks is named, an
// unsatisfiable constraint names the versions held, a configuration file
// that does not parse is named with its line, and nothing is written.
func TestAcceptanceLockRefusals(t *testing.T) { eachTofu(t, scenarioLockRefusals) }

func scenarioLockRefusals(t *testing.T) {
	t.Parallel()
	w, plan := lockWorld(t)
	dir := w.workDir("~> 1.0")
	run := w.mustMirror(1, nil, "lock", "-c", plan, "--platform", currentPlatform, "--platform", "windows_386", dir)
	if !strings.Contains(run.stderr, "windows_386") || !strings.Contains(run.stderr, address) {
		t.Fatalf("error does not name the missing platform and provider:\n%s", run.stderr)
	}
	dir2 := w.workDir("~> 2.0")
	run = w.mustMirror(1, nil, "lock", "-c", plan, dir2)
	if !strings.Contains(run.stderr, "~> 2.0") || !strings.Contains(run.stderr, "1.1.0, 1.0.0") {
		t.Fatalf("error does not name the constraints and the versions held:\n%s", run.stderr)
	}
	dir3 := w.workDir("~> 1.0")
	writeFile(t, filepath.Join(dir3, "broken.tf"), "terraform {\n  required_providers {\n    x = {\n}\n")
	run = w.mustMirror(1, nil, "lock", "-c", plan, dir3)
	if !strings.Contains(run.stderr, filepath.Join(dir3, "broken.tf")+":") {
		t.Fatalf("error does not name the broken file and line:\n%s", run.stderr)
	}
	for _, d := range []string{dir, dir2, dir3} {
		if _, err := os.Stat(filepath.Join(d, ".terraform.lock.hcl")); err == nil {
			t.Fatalf("a lock file was written in %s despite the error", d)
		}
	}
}

// TestAcceptanceLockTamperedSums: a provenance whose SHA256SUMS no longer
// matches its signature is refused; its hashes never reach a lock file.
func TestAcceptanceLockTamperedSums(t *testing.T) { eachTofu(t, scenarioLockTamperedSums) }

func scenarioLockTamperedSums(t *testing.T) {
	t.Parallel()
	w, plan := lockWorld(t)
	w.tamperProvenance("opentofu-providers/"+source, "1.1.0")
	dir := w.workDir("~> 1.0")
	run := w.mustMirror(1, nil, "lock", "-c", plan, dir)
	if !strings.Contains(run.stderr, "provenance") || !strings.Contains(run.stderr, "1.1.0") {
		t.Fatalf("error does not say the provenance of 1.1.0 failed:\n%s", run.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, ".terraform.lock.hcl")); err == nil {
		t.Fatal("a lock file was written from a tampered SHA256SUMS")
	}
}

// TestAcceptanceLockPinnedKeys: the stored SHA256SUMS is re-verified
// under the run's trust policy. Without trust.provider_keys the key stored
// next to it verifies, and the output says the keys are not pinned; with
// the upstream's key pinned it verifies and no such note appears; with only
// a stranger's key pinned for the namespace the release is refused and no
// lock file is written.
func TestAcceptanceLockPinnedKeys(t *testing.T) { eachTofu(t, scenarioLockPinnedKeys) }

func scenarioLockPinnedKeys(t *testing.T) {
	t.Parallel()
	w, plan := lockWorld(t)
	const note = "Signing keys: not pinned"

	run := w.mustMirror(0, nil, "lock", "-c", plan, w.workDir("~> 1.0"))
	if !strings.Contains(run.stdout, note) {
		t.Fatalf("unpinned run does not say the keys are not pinned:\n%s", run)
	}

	pinned := func(armored string) string {
		keys := filepath.Join(t.TempDir(), "provider-keys")
		writeFile(t, filepath.Join(keys, namespace, "pinned.asc"), armored)
		w.trust = fmt.Sprintf("  provider_keys: %q\n", keys)
		return w.writePlan(">= 1.0.0", currentPlatform, otherPlatform())
	}

	dir := w.workDir("~> 1.0")
	run = w.mustMirror(0, nil, "lock", "-c", pinned(w.up.ArmoredPublicKey), dir)
	if strings.Contains(run.stdout, note) {
		t.Fatalf("pinned run claims the keys are not pinned:\n%s", run)
	}
	if got, ok := readLock(t, dir)[address]; !ok || got.Version != "1.1.0" {
		t.Fatalf("with the upstream key pinned, locked %+v, want 1.1.0", got)
	}

	dir = w.workDir("~> 1.0")
	run = w.mustMirror(1, nil, "lock", "-c", pinned(testpgp.New(t, "stranger", "").PublicArmored), dir)
	if !strings.Contains(run.stderr, "provenance") || !strings.Contains(run.stderr, "pinned") || !strings.Contains(run.stderr, "1.1.0") {
		t.Fatalf("error does not say 1.1.0's provenance is not signed by a pinned key:\n%s", run)
	}
	if _, err := os.Stat(filepath.Join(dir, ".terraform.lock.hcl")); err == nil {
		t.Fatal("a lock file was written from a SHA256SUMS no pinned key signed")
	}
}

// TestAcceptanceLockNoProvenance: a version copied in by another tool,
// without its provenance, gets zh: only for the zips held, and a warning.
func TestAcceptanceLockNoProvenance(t *testing.T) { eachTofu(t, scenarioLockNoProvenance) }

func scenarioLockNoProvenance(t *testing.T) {
	t.Parallel()
	w, plan := lockWorld(t)
	ctx := context.Background()
	src, _ := ref.New(w.reg.Host + "/opentofu-providers/" + source + ":1.0.0")
	dst, _ := ref.New(w.reg.Host + "/opentofu-providers/acme/copied:1.0.0")
	if err := w.reg.Client().ImageCopy(ctx, src, dst); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "main.tf"), `terraform {
  required_providers {
    copied = { source = "acme/copied" }
  }
}
`)
	run := w.mustMirror(0, nil, "lock", "-c", plan, dir)
	if !strings.Contains(run.stderr, "not signed") {
		t.Fatalf("no warning that the hashes are unsigned:\n%s", run.stderr)
	}
	got := readLock(t, dir)[originHost+"/acme/copied"]
	want := []string{w.zh("1.0.0", currentPlatform), w.zh("1.0.0", otherPlatform())}
	slices.Sort(want)
	if !slices.Equal(zhHashes(got.Hashes), want) || len(got.Hashes) != 4 {
		t.Fatalf("hashes %v, want 2 h1: and exactly the held zips' zh: %v", got.Hashes, want)
	}
}

// tamperProvenance adds, next to the honest one, a provenance for version
// whose SHA256SUMS has one digit changed but keeps the original signature.
func (w *world) tamperProvenance(repo, version string) {
	w.t.Helper()
	ctx := context.Background()
	rc := w.reg.Client()
	idxRef, _ := ref.New(w.reg.Host + "/" + repo + ":" + manifest.Tag(version))
	idx, err := rc.ManifestHead(ctx, idxRef, regclient.WithManifestRequireDigest())
	if err != nil {
		w.t.Fatal(err)
	}
	subject := idx.GetDescriptor()
	rl, err := rc.ReferrerList(ctx, idxRef)
	if err != nil || len(rl.Descriptors) == 0 {
		w.t.Fatalf("no provenance to tamper with: %v", err)
	}
	pm, err := rc.ManifestGet(ctx, idxRef.SetDigest(rl.Descriptors[0].Digest.String()))
	if err != nil {
		w.t.Fatal(err)
	}
	layers, err := pm.(rcmanifest.Imager).GetLayers()
	if err != nil {
		w.t.Fatal(err)
	}
	repoRef := idxRef.SetTag("")
	var sums, sig, key descriptor.Descriptor
	for _, l := range layers {
		switch l.MediaType {
		case manifest.SHA256SUMSMediaType:
			sums = l
		case manifest.SignatureMediaType:
			sig = l
		case manifest.PublicKeyMediaType:
			key = l
		}
	}
	br, err := rc.BlobGet(ctx, repoRef, sums)
	if err != nil {
		w.t.Fatal(err)
	}
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(br)
	_ = br.Close()
	data := buf.Bytes()
	if data[0] == '0' {
		data[0] = '1'
	} else {
		data[0] = '0'
	}
	bad, err := rc.BlobPut(ctx, repoRef, descriptor.Descriptor{MediaType: sums.MediaType}, bytes.NewReader(data))
	if err != nil {
		w.t.Fatal(err)
	}
	bad.MediaType = sums.MediaType
	art, err := manifest.Provenance(subject, bad, sig, key)
	if err != nil {
		w.t.Fatal(err)
	}
	m, err := rcmanifest.New(rcmanifest.WithRaw(art.Raw))
	if err != nil {
		w.t.Fatal(err)
	}
	if err := rc.ManifestPut(ctx, repoRef.SetDigest(art.Descriptor.Digest.String()), m, regclient.WithManifestChild()); err != nil {
		w.t.Fatal(err)
	}
}

// TestAcceptanceLockConstraintsLikeTofu: for configurations whose root
// and local module both constrain the provider, written in various
// spellings, our file (one platform) is byte for byte tofu's: the same
// merged, normalised constraints and the same selected version.
func TestAcceptanceLockConstraintsLikeTofu(t *testing.T) {
	eachTofu(t, scenarioLockConstraintsLikeTofu)
}

func scenarioLockConstraintsLikeTofu(t *testing.T) {
	t.Parallel()
	w, plan := lockWorld(t)
	tests := []struct{ root, module string }{
		{root: "~>1.0.0", module: ">= 1.0, < 2"},
		{root: ">= 1.0.0, != 1.1.0", module: ""},
		{root: "", module: "~> 1"},
		{root: "", module: ""},
		{root: "1.0.0", module: "~> 1.0"},
	}
	for _, tt := range tests {
		t.Run(tt.root+"|"+tt.module, func(t *testing.T) {
			w := w.sub(t)
			config := func() string {
				dir := t.TempDir()
				version := func(c string) string {
					if c == "" {
						return ""
					}
					return fmt.Sprintf(", version = %q", c)
				}
				writeFile(t, filepath.Join(dir, "main.tf"), fmt.Sprintf(`terraform {
  required_providers {
    echo = { source = %q%s }
  }
}

module "child" {
  source = "./child"
}
`, source, version(tt.root)))
				writeFile(t, filepath.Join(dir, "child", "main.tf"), fmt.Sprintf(`terraform {
  required_providers {
    echo = { source = %q%s }
  }
}
`, source, version(tt.module)))
				return dir
			}
			theirs, ours := config(), config()
			// providers lock wants even local modules installed.
			w.runTofu(theirs, w.upstreamCLIConfig(), "get")
			w.runTofu(theirs, w.upstreamCLIConfig(), "providers", "lock", "-platform="+currentPlatform)
			w.mustMirror(0, nil, "lock", "-c", plan, "--platform", currentPlatform, ours)
			want := readFile(t, filepath.Join(theirs, ".terraform.lock.hcl"))
			if got := readFile(t, filepath.Join(ours, ".terraform.lock.hcl")); got != want {
				t.Fatalf("ours:\n%s\ntofu's:\n%s", got, want)
			}
		})
	}
}
