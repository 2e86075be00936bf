// Package testtools gives tests of this repository the real binaries they
// run: the pinned OpenTofu CLI and the minimal echo provider, both built from
// the nested modules under testdata/ by scripts/build-test-tools.sh into
// .cache/bin/. It also runs tofu in an environment isolated from the user's.
//
// A failed build fails the test; nothing here skips, because a skipped
// acceptance test would pass CI without proving anything. The first build of
// tofu takes a few minutes on a cold cache, so CI runs the script before
// go test.
package testtools

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// MainModule is the module path whose go.mod marks the repository root.
const MainModule = "github.com/tofu-oci-mirror/tofu-oci-mirror"

// BuildScript is the build script's path relative to the repository root.
const BuildScript = "scripts/build-test-tools.sh"

// BinDir is where the build script puts the binaries, relative to the
// repository root.
const BinDir = ".cache/bin"

// EchoProviderBinary is the file name of the echo provider binary in BinDir.
// Inside a provider package it must be renamed to
// terraform-provider-echo_v<VERSION>.
const EchoProviderBinary = "terraform-provider-echo"

// tool is one binary the build script knows how to build; the build runs at
// most once per test process whatever the number of parallel callers.
type tool struct {
	arg  string // the script's name for the tool
	file string // file name in BinDir
	once sync.Once
	path string
	log  string
	err  error
}

var (
	tofuTool    = &tool{arg: "tofu", file: "tofu"}
	tofu112Tool = &tool{arg: "tofu-1.12", file: "tofu-1.12"}
	echoTool    = &tool{arg: "provider-echo", file: EchoProviderBinary}
)

// TofuBinary is one pinned OpenTofu CLI the acceptance suite runs.
type TofuBinary struct {
	// Version is the OpenTofu release pinned in the tool module's go.mod,
	// without the "v", e.g. "1.10.10".
	Version string
	// Path is the absolute path of the built binary.
	Path string
}

// tofuModules are the nested modules pinning OpenTofu, oldest first: the
// oldest release line with OCI support (1.10) and the newest (1.12).
var tofuModules = []struct {
	dir  string
	tool *tool
}{
	{dir: "testdata/tofu", tool: tofuTool},
	{dir: "testdata/tofu-1.12", tool: tofu112Tool},
}

// Tofus returns every pinned OpenTofu CLI, oldest first, building each as
// Tofu does. Acceptance scenarios run once per entry so a behaviour that
// differs between OpenTofu releases shows up as a failing subtest.
func Tofus(t testing.TB) []TofuBinary {
	t.Helper()
	root := RepoRoot(t)
	out := make([]TofuBinary, 0, len(tofuModules))
	for _, m := range tofuModules {
		gomod := filepath.Join(root, m.dir, "go.mod")
		v, err := requiredVersion(gomod, "github.com/opentofu/opentofu")
		if err != nil {
			t.Fatalf("testtools: %v", err)
		}
		out = append(out, TofuBinary{Version: v, Path: m.tool.get(t)})
	}
	return out
}

// requiredVersion returns the version, without "v", that gomod requires of
// module.
func requiredVersion(gomod, module string) (string, error) {
	b, err := os.ReadFile(gomod)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
		if len(f) >= 2 && f[0] == module {
			return strings.TrimPrefix(f[1], "v"), nil
		}
	}
	return "", fmt.Errorf("%s: no requirement of %s", gomod, module)
}

// RepoRoot returns the repository root: the nearest directory, from the
// working directory upwards, whose go.mod declares MainModule. The nested
// tool modules under testdata/ are passed over because their module paths
// differ.
func RepoRoot(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatalf("testtools: working directory: %v", err)
	}
	root, err := findRepoRoot(wd)
	if err != nil {
		t.Fatalf("testtools: %v", err)
	}
	return root
}

// findRepoRoot walks up from dir to the directory holding MainModule's go.mod.
func findRepoRoot(dir string) (string, error) {
	start := dir
	for {
		mod, err := modulePath(filepath.Join(dir, "go.mod"))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		if mod == MainModule {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("%w: no go.mod with module %s in %s or its parents", ErrRepoRootNotFound, MainModule, start)
		}
		dir = parent
	}
}

// modulePath returns the path in the module directive of the go.mod file,
// or "" when the file has none.
func modulePath(gomod string) (string, error) {
	f, err := os.Open(gomod)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "module"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
			return strings.Trim(strings.TrimSpace(rest), `"`), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("reading %s: %w", gomod, err)
	}
	return "", nil
}

// Tofu returns the absolute path of the OpenTofu CLI pinned in
// testdata/tofu/go.mod, running the build script first (once per test
// process; it returns at once when the binary is up to date). A failed build
// fails the test with the script's output.
func Tofu(t testing.TB) string {
	t.Helper()
	return tofuTool.get(t)
}

// EchoProvider returns the absolute path of the terraform-provider-echo
// binary built from testdata/provider-echo, the same way as Tofu. It serves
// plugin protocol 6, provider type "echo", one data source "echo" with a
// required string input and a computed output equal to it.
func EchoProvider(t testing.TB) string {
	t.Helper()
	return echoTool.get(t)
}

// get builds the tool once per process and reports the outcome to t.
func (tl *tool) get(t testing.TB) string {
	t.Helper()
	root := RepoRoot(t)
	tl.once.Do(func() {
		tl.path, tl.log, tl.err = buildTool(context.Background(), root, tl.arg, tl.file)
	})
	if tl.err != nil {
		t.Fatalf("testtools: %v\n%s", tl.err, tl.log)
	}
	return tl.path
}

// buildTool runs the build script for one tool and returns the binary's path
// and the script's output.
func buildTool(ctx context.Context, root, arg, file string) (string, string, error) {
	script := filepath.Join(root, BuildScript)
	cmd := exec.CommandContext(ctx, "bash", script, arg)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", string(out), fmt.Errorf("%w: %s %s: %v", ErrBuildFailed, BuildScript, arg, err)
	}
	path := filepath.Join(root, BinDir, file)
	if fi, err := os.Stat(path); err != nil || fi.Mode()&0o111 == 0 {
		return "", string(out), fmt.Errorf("%w: %s %s succeeded but %s is not an executable file", ErrBuildFailed, BuildScript, arg, path)
	}
	return path, string(out), nil
}

// passThroughEnv lists the variables RunTofu copies from the test process:
// only what finding programs and temp space needs, plus tofu's own logging
// switches so a failing test can be rerun with TF_LOG=trace.
var passThroughEnv = []string{"PATH", "TMPDIR", "TF_LOG", "TF_LOG_PATH", "TF_LOG_CORE", "TF_LOG_PROVIDER"}

// RunTofu runs tofu with args in dir and returns its combined stdout and
// stderr; when tofu fails the test fails with that output. See RunTofuErr for
// the environment tofu gets.
func RunTofu(t testing.TB, tofu, dir string, env []string, args ...string) string {
	t.Helper()
	out, err := RunTofuErr(t, tofu, dir, env, args...)
	if err != nil {
		t.Fatalf("testtools: %v\n%s", err, out)
	}
	return out
}

// RunTofuErr is RunTofu returning tofu's failure instead of failing the test.
//
// Tofu does not inherit the test process's environment. It gets PATH,
// TMPDIR and the TF_LOG* variables, HOME set to a fresh temporary directory,
// TF_IN_AUTOMATION=1, TF_INPUT=0, CHECKPOINT_DISABLE=1 and TF_CLI_CONFIG_FILE
// pointing to an empty file, then env, whose entries win over these; pass
// TF_CLI_CONFIG_FILE (and e.g. SSL_CERT_FILE) there. TF_PLUGIN_CACHE_DIR and
// any ambient TF_CLI_CONFIG_FILE are never inherited. The command stops when
// the test's context ends.
func RunTofuErr(t testing.TB, tofu, dir string, env []string, args ...string) (string, error) {
	t.Helper()
	home := t.TempDir()
	emptyConfig := filepath.Join(home, "empty.tofurc")
	if err := os.WriteFile(emptyConfig, nil, 0o600); err != nil {
		t.Fatalf("testtools: writing %s: %v", emptyConfig, err)
	}
	base := []string{
		"HOME=" + home,
		"TF_CLI_CONFIG_FILE=" + emptyConfig,
		"TF_IN_AUTOMATION=1",
		"TF_INPUT=0",
		"CHECKPOINT_DISABLE=1",
	}
	for _, k := range passThroughEnv {
		if v, ok := os.LookupEnv(k); ok {
			base = append(base, k+"="+v)
		}
	}

	cmd := exec.CommandContext(t.Context(), tofu, args...)
	cmd.Dir = dir
	// exec.Cmd keeps the last value of a duplicated key, so env overrides base.
	cmd.Env = append(base, env...)
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	start := time.Now()
	err := cmd.Run()
	t.Logf("tofu %s (in %s, %s):\n%s", strings.Join(args, " "), dir, time.Since(start).Round(time.Millisecond), out.String())
	if err != nil {
		return out.String(), fmt.Errorf("tofu %s in %s: %w", strings.Join(args, " "), dir, err)
	}
	return out.String(), nil
}
