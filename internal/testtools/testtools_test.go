package testtools

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestFindRepoRoot(t *testing.T) {
	root := RepoRoot(t)
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := modulePath(filepath.Join(root, "go.mod")); err != nil || got != MainModule {
		t.Fatalf("RepoRoot = %s whose module is %q (err %v), want %s", root, got, err, MainModule)
	}

	// A nested module with another path must be passed over, and a tree
	// without the main module must say so.
	fake := t.TempDir()
	writeFile(t, filepath.Join(fake, "go.mod"), "// main\nmodule "+MainModule+"\n\ngo 1.26\n")
	writeFile(t, filepath.Join(fake, "testdata", "tofu", "go.mod"), "module "+MainModule+"/testdata/tofu\n")
	mkdir(t, filepath.Join(fake, "testdata", "tofu", "deeper"))
	other := t.TempDir()
	writeFile(t, filepath.Join(other, "go.mod"), "module example.com/other\n")

	tests := []struct {
		name    string
		start   string
		want    string
		wantErr error
	}{
		{name: "root itself", start: fake, want: fake},
		{name: "below a nested module", start: filepath.Join(fake, "testdata", "tofu", "deeper"), want: fake},
		{name: "this package's dir", start: wd, want: root},
		{name: "other module only", start: other, wantErr: ErrRepoRootNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := findRepoRoot(tt.start)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("findRepoRoot(%s) error = %v, want %v", tt.start, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("findRepoRoot(%s) = %q, %v; want %q", tt.start, got, err, tt.want)
			}
		})
	}
}

// TestToolsSmoke proves both binaries work together: the real tofu installs
// the echo provider from a local filesystem mirror, in the packed (zip) and
// the unpacked layout, and reads the data source.
func TestToolsSmoke(t *testing.T) {
	tofu := Tofu(t)
	echo := EchoProvider(t)

	out := RunTofu(t, tofu, t.TempDir(), nil, "version")
	if !strings.Contains(out, "OpenTofu v1.10.10\n") {
		t.Fatalf("tofu version = %q, want OpenTofu v1.10.10", out)
	}

	const (
		hostname  = "registry.opentofu.org"
		namespace = "hashicorp"
		ptype     = "echo"
		version   = "1.0.0"
		input     = "hello through a filesystem mirror"
	)
	platform := runtime.GOOS + "_" + runtime.GOARCH
	executable := fmt.Sprintf("terraform-provider-%s_v%s", ptype, version)

	layouts := []struct {
		name  string
		place func(t *testing.T, mirror string)
	}{
		{
			// HOSTNAME/NAMESPACE/TYPE/terraform-provider-TYPE_VERSION_TARGET.zip
			name: "packed",
			place: func(t *testing.T, mirror string) {
				dir := filepath.Join(mirror, hostname, namespace, ptype)
				mkdir(t, dir)
				zipName := fmt.Sprintf("terraform-provider-%s_%s_%s.zip", ptype, version, platform)
				writeProviderZip(t, filepath.Join(dir, zipName), executable, echo)
			},
		},
		{
			// HOSTNAME/NAMESPACE/TYPE/VERSION/TARGET/terraform-provider-TYPE_vVERSION
			name: "unpacked",
			place: func(t *testing.T, mirror string) {
				dir := filepath.Join(mirror, hostname, namespace, ptype, version, platform)
				mkdir(t, dir)
				copyExecutable(t, echo, filepath.Join(dir, executable))
			},
		},
	}
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			mirror := t.TempDir()
			l.place(t, mirror)

			cliConfig := filepath.Join(t.TempDir(), "tofurc")
			writeFile(t, cliConfig, fmt.Sprintf(`provider_installation {
  filesystem_mirror {
    path    = %q
    include = ["%s/%s/%s"]
  }
}
`, mirror, hostname, namespace, ptype))

			work := t.TempDir()
			writeFile(t, filepath.Join(work, "main.tf"), fmt.Sprintf(`terraform {
  required_providers {
    echo = {
      source  = "%s/%s/%s"
      version = "%s"
    }
  }
}

data "echo" "smoke" {
  input = %q
}

output "echoed" {
  value = data.echo.smoke.output
}
`, hostname, namespace, ptype, version, input))

			env := []string{"TF_CLI_CONFIG_FILE=" + cliConfig}
			out := RunTofu(t, tofu, work, env, "init", "-input=false", "-no-color")
			if want := fmt.Sprintf("Installed %s/%s v%s", namespace, ptype, version); !strings.Contains(out, want) {
				t.Fatalf("tofu init output lacks %q:\n%s", want, out)
			}
			lock, err := os.ReadFile(filepath.Join(work, ".terraform.lock.hcl"))
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("provider %q", hostname+"/"+namespace+"/"+ptype); !strings.Contains(string(lock), want) {
				t.Fatalf(".terraform.lock.hcl lacks %s:\n%s", want, lock)
			}

			RunTofu(t, tofu, work, env, "apply", "-auto-approve", "-input=false", "-no-color")
			if got := RunTofu(t, tofu, work, env, "output", "-raw", "echoed"); got != input {
				t.Fatalf("tofu output -raw echoed = %q, want %q", got, input)
			}
		})
	}
}

// TestRunTofuErrIsolation checks that tofu reads neither the test process's
// TF_CLI_CONFIG_FILE nor the user's home directory, and that env reaches it.
func TestRunTofuErrIsolation(t *testing.T) {
	tofu := Tofu(t)
	const complaint = "problems with the CLI configuration"

	bad := filepath.Join(t.TempDir(), "bad.tofurc")
	writeFile(t, bad, "provider_installation {\n")
	home := t.TempDir()
	writeFile(t, filepath.Join(home, ".tofurc"), "provider_installation {\n")
	writeFile(t, filepath.Join(home, ".terraformrc"), "provider_installation {\n")
	t.Setenv("HOME", home)
	t.Setenv("TF_CLI_CONFIG_FILE", bad)

	tests := []struct {
		name         string
		env          []string
		wantComplain bool
	}{
		{name: "ambient config and home ignored", env: nil, wantComplain: false},
		{name: "explicit config used", env: []string{"TF_CLI_CONFIG_FILE=" + bad}, wantComplain: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := RunTofuErr(t, tofu, t.TempDir(), tt.env, "version")
			if err != nil {
				t.Fatalf("tofu version: %v\n%s", err, out)
			}
			if got := strings.Contains(out, complaint); got != tt.wantComplain {
				t.Fatalf("output mentions %q = %v, want %v:\n%s", complaint, got, tt.wantComplain, out)
			}
		})
	}

	if out, err := RunTofuErr(t, tofu, t.TempDir(), nil, "no-such-command"); err == nil {
		t.Fatalf("tofu no-such-command succeeded:\n%s", out)
	}
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	mkdir(t, filepath.Dir(path))
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyExecutable(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		t.Fatalf("copying %s to %s: %v", src, dst, err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// writeProviderZip writes a provider package: a zip holding the executable
// under the name OpenTofu runs, with its execute bits set.
func writeProviderZip(t *testing.T, zipPath, name, src string) {
	t.Helper()
	f, err := os.Create(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	zw := zip.NewWriter(f)
	hdr := &zip.FileHeader{Name: name, Method: zip.Deflate}
	hdr.SetMode(0o755)
	w, err := zw.CreateHeader(hdr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(w, in); err != nil {
		t.Fatalf("zipping %s into %s: %v", src, zipPath, err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestRequiredVersion(t *testing.T) {
	root := RepoRoot(t)
	for _, m := range tofuModules {
		v, err := requiredVersion(filepath.Join(root, m.dir, "go.mod"), "github.com/opentofu/opentofu")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(v, "1.") || strings.HasPrefix(v, "v") {
			t.Fatalf("%s pins OpenTofu %q, want a 1.x release without v", m.dir, v)
		}
	}
	if _, err := requiredVersion(filepath.Join(root, "go.mod"), "github.com/opentofu/opentofu"); err == nil {
		t.Fatal("the main go.mod does not require OpenTofu, yet requiredVersion found it")
	}
}
