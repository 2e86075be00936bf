package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testgit"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testpgp"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testtools"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testupstream"
)

// fakeEnv is a credEnv over vars and home, for table tests.
func fakeEnv(home string, vars map[string]string) credEnv {
	var environ []string
	for k, v := range vars {
		environ = append(environ, k+"="+v)
	}
	return credEnv{getenv: func(k string) string { return vars[k] }, environ: environ, home: home, goos: "linux"}
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// cliConfigWith is a CLI configuration with a credentials block for host
// among the other blocks people keep there.
func cliConfigWith(host, token string) string {
	return fmt.Sprintf(`plugin_cache_dir = "/tmp/plugins"
provider_installation {
  oci_mirror {
    repository_template = "r.example/p/${namespace}/${type}"
    include             = ["registry.opentofu.org/*/*"]
  }
}
host "example.net" {
  services = {
    "providers.v1" = "https://example.net/v1/providers/"
  }
}
credentials %q {
  token = %q
}
`, host, token)
}

// credentialsJSON is what `tofu login` writes to credentials.tfrc.json.
func credentialsJSON(host, token string) string {
	return fmt.Sprintf(`{"credentials": {%q: {"token": %q}}}`, host, token)
}

// TestUpstreamTokenSources: every place OpenTofu finds a registry token,
// its order of precedence and its hostname normalisation.
func TestUpstreamTokenSources(t *testing.T) {
	type want map[string]string // host as the client asks -> token
	tests := []struct {
		name  string
		vars  map[string]string
		files map[string]string // relative to HOME, or absolute
		want  want
	}{
		{
			name: "TF_TOKEN spellings",
			vars: map[string]string{
				"TF_TOKEN_my__registry_example_com": "dashes-and-dots",
				"TF_TOKEN_UPPER_EXAMPLE_ORG":        "tok-upper",
				"TF_TOKEN_café_example":             "unicode-idn",
				"TF_TOKEN_xn____bcher__kva_example": "punycode-idn",
				"TF_TOKEN_localhost:8443":           "with-port",
			},
			want: want{
				"my-registry.example.com": "dashes-and-dots", "MY-Registry.Example.com": "dashes-and-dots",
				"my.registry.example.com": "",
				"upper.example.org":       "tok-upper",
				"xn--caf-dma.example":     "unicode-idn", "café.example": "unicode-idn",
				"bücher.example": "punycode-idn", "xn--bcher-kva.example": "punycode-idn",
				"localhost:8443": "with-port", "localhost": "",
				"other.example.com": "",
			},
		},
		{
			name:  "~/.tofurc credentials block",
			files: map[string]string{".tofurc": cliConfigWith("registry.example.com", "from-tofurc")},
			want:  want{"registry.example.com": "from-tofurc", "example.net": ""},
		},
		{
			name:  "~/.terraformrc when there is no ~/.tofurc",
			files: map[string]string{".terraformrc": cliConfigWith("registry.example.com", "from-terraformrc")},
			want:  want{"registry.example.com": "from-terraformrc"},
		},
		{
			name: "~/.tofurc wins over ~/.terraformrc",
			files: map[string]string{
				".tofurc":      cliConfigWith("a.example", "a-from-tofurc"),
				".terraformrc": cliConfigWith("b.example", "b-from-terraformrc"),
			},
			want: want{"a.example": "a-from-tofurc", "b.example": ""},
		},
		{
			name: "credentials.tfrc.json from tofu login replaces the file's entry",
			files: map[string]string{
				".tofurc": cliConfigWith("registry.example.com", "from-tofurc") + `credentials "other.example" {
  token = "tok-other"
}
`,
				".terraform.d/credentials.tfrc.json": credentialsJSON("Registry.Example.com", "from-login"),
			},
			want: want{"registry.example.com": "from-login", "other.example": "tok-other"},
		},
		{
			name:  "XDG_CONFIG_HOME when HOME has neither file nor directory",
			vars:  map[string]string{"XDG_CONFIG_HOME": "XDG"},
			files: map[string]string{"XDG/opentofu/tofurc": cliConfigWith("a.example", "xdg-file"), "XDG/opentofu/credentials.tfrc.json": credentialsJSON("b.example", "xdg-dir")},
			want:  want{"a.example": "xdg-file", "b.example": "xdg-dir"},
		},
		{
			name: "TF_CLI_CONFIG_FILE replaces ~/.tofurc and the configuration directory",
			vars: map[string]string{"TF_CLI_CONFIG_FILE": "elsewhere/cli.tfrc"},
			files: map[string]string{
				"elsewhere/cli.tfrc":                 cliConfigWith("a.example", "from-override"),
				".tofurc":                            cliConfigWith("b.example", "ignored"),
				".terraform.d/credentials.tfrc.json": credentialsJSON("c.example", "ignored"),
			},
			want: want{"a.example": "from-override", "b.example": "", "c.example": ""},
		},
		{
			name:  "TF_TOKEN wins over a credentials block",
			vars:  map[string]string{"TF_TOKEN_registry_example_com": "from-env"},
			files: map[string]string{".tofurc": cliConfigWith("registry.example.com", "from-tofurc")},
			want:  want{"registry.example.com": "from-env"},
		},
		{
			name:  "a block without a token is no credential",
			files: map[string]string{".tofurc": "credentials \"registry.example.com\" {\n  user = \"x\"\n}\n"},
			want:  want{"registry.example.com": ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := t.TempDir()
			vars := map[string]string{}
			for k, v := range tt.vars {
				if k == "XDG_CONFIG_HOME" || k == "TF_CLI_CONFIG_FILE" {
					v = filepath.Join(home, v)
				}
				vars[k] = v
			}
			for name, content := range tt.files {
				writeTestFile(t, filepath.Join(home, name), content)
			}
			var logs bytes.Buffer
			tokens := findUpstreamTokens(fakeEnv(home, vars), slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
			for host, wantTok := range tt.want {
				if got := tokens.lookup(host); got != wantTok {
					t.Errorf("token for %s = %q, want %q", host, got, wantTok)
				}
			}
			for _, tok := range tt.want {
				if tok != "" && strings.Contains(logs.String(), tok) {
					t.Fatalf("a token reached the debug log:\n%s", logs.String())
				}
			}
		})
	}
}

// TestUpstreamTokenFileErrorsAreNamed: a broken CLI configuration is
// skipped with a warning naming the file and line, never its token.
func TestUpstreamTokenFileErrorsAreNamed(t *testing.T) {
	home := t.TempDir()
	writeTestFile(t, filepath.Join(home, ".tofurc"), "credentials \"a.example\" {\n  token = 42\n}\n")
	writeTestFile(t, filepath.Join(home, ".terraform.d", "broken.tfrc.json"), `{"credentials": {"b.example": {"token": "secret-in-broken"}`)
	var logs bytes.Buffer
	tokens := findUpstreamTokens(fakeEnv(home, nil), slog.New(slog.NewTextHandler(&logs, nil)))
	if tokens.lookup("a.example") != "" || tokens.lookup("b.example") != "" {
		t.Fatal("a token came out of a file that does not parse")
	}
	for _, want := range []string{filepath.Join(home, ".tofurc") + ":2", "token must be a string", "broken.tfrc.json"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("warnings lack %q:\n%s", want, logs.String())
		}
	}
	if strings.Contains(logs.String(), "secret-in-broken") {
		t.Fatalf("a token reached the log:\n%s", logs.String())
	}
}

// TestUpstreamTokensLikeTofu is differential: for each place a token can
// live, real tofu (both pinned releases) and our CLI, given the same HOME
// and environment, must both get through an upstream that demands the
// token; with the token nowhere both must be refused. The token goes only
// on registry API requests, never on package downloads.
func TestUpstreamTokensLikeTofu(t *testing.T) {
	const secret = "tok-differential-4b1d"
	up := testupstream.New(t, testupstream.WithToken(secret))
	up.AddProvider("acme", "widget", "1.0.0", "linux_amd64")
	reg := testregistry.New(t)
	providers := up.Services()["providers.v1"]
	hostBlock := fmt.Sprintf("host \"registry.opentofu.org\" {\n  services = {\n    \"providers.v1\" = %q\n  }\n}\n", providers)
	tokenBlock := fmt.Sprintf("credentials \"registry.opentofu.org\" {\n  token = %q\n}\n", secret)
	tofus := testtools.Tofus(t)

	tests := []struct {
		name  string
		vars  map[string]string // TF_CLI_CONFIG_FILE relative to HOME
		files map[string]string
		ok    bool
	}{
		{name: "TF_TOKEN", vars: map[string]string{"TF_TOKEN_registry_opentofu_org": secret}, files: map[string]string{".tofurc": hostBlock}, ok: true},
		{name: "~/.tofurc", files: map[string]string{".tofurc": hostBlock + tokenBlock}, ok: true},
		{name: "~/.terraformrc", files: map[string]string{".terraformrc": hostBlock + tokenBlock}, ok: true},
		{name: "credentials.tfrc.json", files: map[string]string{".tofurc": hostBlock, ".terraform.d/credentials.tfrc.json": credentialsJSON("registry.opentofu.org", secret)}, ok: true},
		{name: "TF_CLI_CONFIG_FILE", vars: map[string]string{"TF_CLI_CONFIG_FILE": "cfg/cli.tfrc"}, files: map[string]string{"cfg/cli.tfrc": hostBlock + tokenBlock}, ok: true},
		{name: "control: TF_CLI_CONFIG_FILE hides credentials.tfrc.json", vars: map[string]string{"TF_CLI_CONFIG_FILE": "cfg/cli.tfrc"}, files: map[string]string{"cfg/cli.tfrc": hostBlock, ".terraform.d/credentials.tfrc.json": credentialsJSON("registry.opentofu.org", secret)}},
		{name: "control: no token", files: map[string]string{".tofurc": hostBlock}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := t.TempDir()
			for name, content := range tt.files {
				writeTestFile(t, filepath.Join(home, name), content)
			}
			env := map[string]string{"HOME": home, "TF_CLI_CONFIG_FILE": "", "XDG_CONFIG_HOME": "", "SSL_CERT_FILE": up.CAFile}
			for k, v := range tt.vars {
				if k == "TF_CLI_CONFIG_FILE" {
					v = filepath.Join(home, v)
				}
				env[k] = v
			}
			var tofuEnv []string
			for k, v := range env {
				tofuEnv = append(tofuEnv, k+"="+v)
			}
			for _, tofu := range tofus {
				work := t.TempDir()
				writeTestFile(t, filepath.Join(work, "main.tf"), "terraform {\n  required_providers {\n    widget = {\n      source = \"acme/widget\"\n    }\n  }\n}\n")
				out, err := testtools.RunTofuErr(t, tofu.Path, work, tofuEnv, "providers", "lock", "-platform=linux_amd64", "-no-color")
				if (err == nil) != tt.ok {
					t.Fatalf("OpenTofu %s: providers lock error = %v, want success %v:\n%s", tofu.Version, err, tt.ok, out)
				}
			}

			for k, v := range env {
				t.Setenv(k, v)
			}
			e := newCLIEnv(t)
			e.up = up
			e.writePlan(reg.Host, "platforms: [linux_amd64]\nproviders:\n  - source: acme/widget\n    versions: \"1.0.0\"\n")
			want := exitPending
			if !tt.ok {
				want = exitFailed
			}
			before := len(up.Requests())
			_, errOut := e.mustRun(want, "plan", "-c", e.plan, "--detailed-exitcode", "--log-level", "debug")
			if strings.Contains(errOut, secret) {
				t.Fatalf("the token reached our log:\n%s", errOut)
			}
			for _, r := range up.Requests()[before:] {
				api := r.Path == "/.well-known/terraform.json" || strings.HasPrefix(r.Path, "/v1/")
				if r.Authorization != "" && !api {
					t.Fatalf("the token went with %s %s, which is no registry API request", r.Method, r.Path)
				}
			}
		})
	}
}

// TestRegistryAuthFiles: the Docker-style files OpenTofu and Podman read,
// highest priority first, existing files only.
func TestRegistryAuthFiles(t *testing.T) {
	home := t.TempDir()
	run, xdg, dockerDir := filepath.Join(home, "run"), filepath.Join(home, "xdg"), filepath.Join(home, "dockercfg")
	explicit := filepath.Join(home, "explicit-auth.json")
	files := []string{
		explicit,
		filepath.Join(run, "containers", "auth.json"),
		filepath.Join(xdg, "containers", "auth.json"),
		filepath.Join(home, ".config", "containers", "auth.json"),
		filepath.Join(dockerDir, "config.json"),
		filepath.Join(home, ".docker", "config.json"),
	}
	for _, f := range files {
		writeTestFile(t, f, `{"auths": {}}`)
	}
	tests := []struct {
		name string
		goos string
		vars map[string]string
		want []string
	}{
		{name: "linux, everything set", goos: "linux",
			vars: map[string]string{"REGISTRY_AUTH_FILE": explicit, "XDG_RUNTIME_DIR": run, "XDG_CONFIG_HOME": xdg, "DOCKER_CONFIG": dockerDir},
			want: []string{files[0], files[1], files[2], files[4], files[5]}},
		{name: "linux, nothing set", goos: "linux", want: []string{files[3], files[5]}},
		{name: "darwin ignores XDG_RUNTIME_DIR", goos: "darwin", vars: map[string]string{"XDG_RUNTIME_DIR": run}, want: []string{files[3], files[5]}},
		{name: "missing files are skipped", goos: "linux", vars: map[string]string{"REGISTRY_AUTH_FILE": filepath.Join(home, "nope.json"), "XDG_CONFIG_HOME": filepath.Join(home, "empty")}, want: []string{files[5]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := fakeEnv(home, tt.vars)
			env.goos = tt.goos
			if got := registryAuthFiles(env); !slices.Equal(got, tt.want) {
				t.Fatalf("registryAuthFiles =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

// TestRegistryCredentialsFromAuthFiles pushes to a registry that demands a
// password, with the password in each place Podman and OpenTofu keep it
// and nowhere else; the control has it nowhere.
func TestRegistryCredentialsFromAuthFiles(t *testing.T) {
	reg := testregistry.New(t, testregistry.WithTLS(), testregistry.WithHtpasswd("mirror", "s3cret-registry-pass"))
	authJSON := func(t *testing.T) string {
		b, err := os.ReadFile(reg.DockerConfig(t))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	tests := []struct {
		name string
		file string // relative to HOME
		vars map[string]string
		ok   bool
	}{
		{name: "REGISTRY_AUTH_FILE", file: "podman/auth.json", vars: map[string]string{"REGISTRY_AUTH_FILE": "podman/auth.json"}, ok: true},
		{name: "XDG_RUNTIME_DIR", file: "run/containers/auth.json", vars: map[string]string{"XDG_RUNTIME_DIR": "run"}, ok: true},
		{name: "~/.config/containers/auth.json", file: ".config/containers/auth.json", ok: true},
		{name: "~/.docker/config.json", file: ".docker/config.json", ok: true},
		{name: "control: nowhere", file: "unused/auth.json"},
	}
	key := testpgp.New(t, "bundle signer", "").Write(t, t.TempDir(), "signer")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := t.TempDir()
			writeTestFile(t, filepath.Join(home, tt.file), authJSON(t))
			for _, k := range []string{"REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "DOCKER_CONFIG"} {
				t.Setenv(k, "")
			}
			t.Setenv("HOME", home)
			for k, v := range tt.vars {
				t.Setenv(k, filepath.Join(home, v))
			}
			e := newCLIEnv(t)
			e.up.AddProvider("acme", "widget", "1.0.0", "linux_amd64")
			writeMirrorPlan(t, e.plan, reg.Host, reg.CAFile, e.up.CAFile, e.up.Services()["providers.v1"], key.PublicFile)
			want := exitOK
			if !tt.ok {
				want = exitFailed
			}
			_, errOut := e.mustRun(want, "sync", "-c", e.plan, "--no-progress")
			if !tt.ok && !strings.Contains(strings.ToLower(errOut), "unauthorized") {
				t.Fatalf("without credentials the failure does not say unauthorized:\n%s", errOut)
			}
			if strings.Contains(errOut, "s3cret-registry-pass") {
				t.Fatalf("the password reached the log:\n%s", errOut)
			}
		})
	}
}

// TestGitCABundle: what git is told to trust.
func TestGitCABundle(t *testing.T) {
	dir := t.TempDir()
	base, extra := filepath.Join(dir, "base.pem"), filepath.Join(dir, "extra.pem")
	writeTestFile(t, base, "BASE\n")
	writeTestFile(t, extra, "EXTRA\n")
	if got, err := gitCABundle(fakeEnv(dir, nil), "", dir); err != nil || got != "" {
		t.Fatalf("nothing configured: %q, %v; want git's default", got, err)
	}
	if got, err := gitCABundle(fakeEnv(dir, map[string]string{"SSL_CERT_FILE": base}), "", dir); err != nil || got != base {
		t.Fatalf("SSL_CERT_FILE only: %q, %v; want it as is", got, err)
	}
	got, err := gitCABundle(fakeEnv(dir, map[string]string{"SSL_CERT_FILE": base}), extra, dir)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(got); string(b) != "BASE\n\nEXTRA\n\n" {
		t.Fatalf("bundle %s holds %q, want SSL_CERT_FILE then ca_file", got, b)
	}
	// In a spool work directory of its own, so a killed run's bundle is
	// what the next run's spool cleanup removes.
	if wd := filepath.Dir(got); filepath.Dir(wd) != dir || !strings.HasPrefix(filepath.Base(wd), "tofu-oci-mirror-") {
		t.Fatalf("bundle %s is not in a spool work directory under %s", got, dir)
	}
	if _, err := gitCABundle(fakeEnv(dir, nil), filepath.Join(dir, "missing.pem"), dir); err == nil || !strings.Contains(err.Error(), "missing.pem") {
		t.Fatalf("a missing ca_file: %v; want an error naming it", err)
	}
}

// TestGitModuleBehindPrivateCA syncs a module whose registry location is a
// git repository served over HTTPS by a CA only upstream.ca_file names:
// the CLI must hand that CA to git. The control without the CA fails.
func TestGitModuleBehindPrivateCA(t *testing.T) {
	unsetGitTrust(t)
	git := testgit.NewTLS(t)
	repo := git.NewRepo("greeting")
	repo.Write(map[string]string{"main.tf": "output \"x\" {\n  value = 1\n}\n"})
	repo.Commit("first")
	repo.Tag("v1.0.0", false)
	for _, withCA := range []bool{true, false} {
		t.Run(fmt.Sprintf("ca_file has the git CA: %v", withCA), func(t *testing.T) {
			e := newCLIEnv(t)
			e.up.AddModule("acme", "greeting", "null", "1.0.0", "git::"+repo.URL+"?ref=v1.0.0")
			ca := filepath.Join(t.TempDir(), "upstream-ca.pem")
			pemText := string(e.up.CACertPEM)
			if withCA {
				b, err := os.ReadFile(git.CAFile)
				if err != nil {
					t.Fatal(err)
				}
				pemText += string(b)
			}
			writeTestFile(t, ca, pemText)
			svc := e.up.Services()
			writeTestFile(t, e.plan, fmt.Sprintf("version: 1\ntarget:\n  registry: %q\n  insecure: true\nupstream:\n  ca_file: %q\n  hosts:\n    registry.opentofu.org:\n      services:\n        modules.v1: %q\nmodules:\n  - source: acme/greeting/null\n    versions: \"1.0.0\"\n",
				e.reg.Host, ca, svc["modules.v1"]))
			want := exitOK
			if !withCA {
				want = exitFailed
			}
			_, errOut := e.mustRun(want, "sync", "-c", e.plan, "--no-progress")
			if !withCA && !strings.Contains(strings.ToLower(errOut), "certificate") {
				t.Fatalf("the failure does not say which certificate problem git had:\n%s", errOut)
			}
		})
	}
}

// unsetGitTrust removes the variables that change which certificates git
// trusts, until t ends.
func unsetGitTrust(t *testing.T) {
	for _, k := range []string{"GIT_SSL_NO_VERIFY", "GIT_SSL_CAINFO", "SSL_CERT_FILE"} {
		t.Setenv(k, "")
		if err := os.Unsetenv(k); err != nil {
			t.Fatal(err)
		}
	}
}
