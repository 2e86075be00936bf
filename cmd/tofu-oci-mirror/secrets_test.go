package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testpgp"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testupstream"
)

// Recognisable fake credentials. They use only letters, digits and dashes,
// so JSON, URL and shell quoting cannot disguise them in the output.
const (
	secretTFToken      = "tftoken-S3CRET-upstream-7f1c2a9e4b"
	secretWrongTFToken = "tftoken-WR0NG-upstream-0b1d6c3e8a"
	secretGitHubToken  = "ghp-S3CRET-github-token-5e2f9a0c71d4"
	secretRegUser      = "mirror-bot"
	secretRegPass      = "regpass-S3CRET-registry-91d3f0a2"
	secretWrongRegPass = "regpass-WR0NG-registry-4c7e1b05"
	// secretSignPassphrase protects the bundle signing key (export --sign-key).
	secretSignPassphrase = "signpass-S3CRET-bundle-3a9d71c2"
)

// secretForms lists every spelling of a secret that would give it away:
// the value, its base64 and hex forms, and for a registry password the
// basic-auth value (base64 of user:password) that the Docker config and
// the Authorization header carry.
func secretForms(secret string, basicAuthUser string) map[string]string {
	forms := map[string]string{
		"raw":           secret,
		"base64":        base64.StdEncoding.EncodeToString([]byte(secret)),
		"base64-raw":    base64.RawStdEncoding.EncodeToString([]byte(secret)),
		"base64-rawurl": base64.RawURLEncoding.EncodeToString([]byte(secret)),
		"hex":           hex.EncodeToString([]byte(secret)),
	}
	if basicAuthUser != "" {
		pair := []byte(basicAuthUser + ":" + secret)
		forms["basic-auth"] = base64.StdEncoding.EncodeToString(pair)
		forms["basic-auth-raw"] = base64.RawStdEncoding.EncodeToString(pair)
	}
	return forms
}

// allSecretForms covers every fake credential any scenario sets, plus the
// basic-auth form GitHub tokens take on git's command line.
func allSecretForms() map[string]string {
	out := map[string]string{}
	add := func(name, secret, user string) {
		for form, v := range secretForms(secret, user) {
			out[name+" "+form] = v
		}
	}
	add("TF_TOKEN", secretTFToken, "")
	add("wrong TF_TOKEN", secretWrongTFToken, "")
	add("GITHUB_TOKEN", secretGitHubToken, "x-access-token")
	add("registry password", secretRegPass, secretRegUser)
	add("wrong registry password", secretWrongRegPass, secretRegUser)
	add("signing key passphrase", secretSignPassphrase, "")
	return out
}

// outputs collects everything the CLI wrote: streams of each run and, at
// the end, every file under the directories it wrote into.
type outputs struct {
	t     *testing.T
	dirs  []string
	texts map[string]string
}

func newOutputs(t *testing.T, dirs ...string) *outputs {
	return &outputs{t: t, dirs: dirs, texts: map[string]string{}}
}

// run runs the CLI in-process, records its stdout and stderr, and returns
// the exit code and stderr.
func (o *outputs) run(args ...string) (int, string) {
	o.t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"tofu-oci-mirror"}, args...), &stdout, &stderr)
	name := strings.Join(args, " ")
	o.texts["stdout of "+name] = stdout.String()
	o.texts["stderr of "+name] = stderr.String()
	return code, stderr.String()
}

func (o *outputs) mustRun(want int, args ...string) string {
	o.t.Helper()
	code, errOut := o.run(args...)
	if code != want {
		o.t.Fatalf("%v: exit %d, want %d\nstderr:\n%s", args, code, want, errOut)
	}
	return errOut
}

// check fails the test for every output holding any form of any secret.
func (o *outputs) check() {
	o.t.Helper()
	leaks, searched := o.leaks()
	for _, l := range leaks {
		o.t.Error(l)
	}
	o.t.Logf("searched %d streams and files (%d bytes) for %d spellings of the fake secrets", len(o.texts)+searched, o.size(), len(allSecretForms()))
}

// leaks reads every file under the output directories and describes each
// stream or file holding a spelling of a secret.
func (o *outputs) leaks() (found []string, files int) {
	o.t.Helper()
	for _, dir := range o.dirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			o.texts["file "+path] = string(raw)
			files++
			return nil
		})
		if err != nil {
			o.t.Fatal(err)
		}
	}
	for name, text := range o.texts {
		for what, form := range allSecretForms() {
			if i := strings.Index(text, form); i >= 0 {
				lo, hi := max(0, i-120), min(len(text), i+len(form)+40)
				found = append(found, fmt.Sprintf("%s holds the %s: ...%s...", name, what, text[lo:hi]))
			}
		}
	}
	return found, files
}

func (o *outputs) size() int {
	n := 0
	for _, text := range o.texts {
		n += len(text)
	}
	return n
}

// TestSecretScannerFindsLeaks makes sure the search would notice a leak in
// a stream or in a written file, in any spelling.
func TestSecretScannerFindsLeaks(t *testing.T) {
	dir := t.TempDir()
	o := newOutputs(t, dir)
	o.texts["stderr of sync"] = "level=DEBUG msg=request Authorization=\"Bearer " + secretTFToken + "\""
	basic := base64.StdEncoding.EncodeToString([]byte(secretRegUser + ":" + secretRegPass))
	if err := os.WriteFile(filepath.Join(dir, "report.json"), []byte(`{"error":"Basic `+basic+`"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	o.texts["stdout of plan"] = "token " + base64.RawURLEncoding.EncodeToString([]byte(secretGitHubToken))
	leaks, _ := o.leaks()
	where := map[string]bool{}
	for _, l := range leaks {
		where[l[:strings.Index(l, " holds ")]] = true
	}
	if len(where) != 3 || !where["stderr of sync"] || !where["stdout of plan"] || !where["file "+filepath.Join(dir, "report.json")] {
		t.Fatalf("want leaks found in 3 places, got:\n%s", strings.Join(leaks, "\n"))
	}
}

// writeMirrorPlan writes a plan for registry (with its CA) whose
// registry.opentofu.org providers service is providersURL.
func writeMirrorPlan(t *testing.T, path, registry, registryCA, upstreamCA, providersURL, bundleKey string) {
	t.Helper()
	yaml := fmt.Sprintf(`version: 1
trust:
  bundle_keys: [%q]
target:
  registry: %q
  ca_file: %q
upstream:
  ca_file: %q
  hosts:
    registry.opentofu.org:
      services:
        providers.v1: %q
platforms: [linux_amd64, darwin_arm64]
providers:
  - source: acme/widget
    versions: ">= 1.0.0"
`, bundleKey, registry, registryCA, upstreamCA, providersURL)
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
}

// dockerConfigFor writes a Docker config.json with user:pass for host.
func dockerConfigFor(t *testing.T, host, user, pass string) string {
	t.Helper()
	cfg := map[string]map[string]map[string]string{"auths": {host: {"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))}}}
	raw, _ := json.Marshal(cfg)
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// secretWorld is an upstream that demands a token and two registries that
// demand a password (the second receives the bundle), with the fake
// credentials in the environment and Docker configs.
type secretWorld struct {
	up         *testupstream.Server
	reg, reg2  *testregistry.Registry
	dir        string // every file the CLI writes goes below it
	plan       string // for reg
	plan2      string // for reg2 (import)
	dockerCfg  string // credentials for reg and reg2
	dockerCfg2 string
	signKey    string // export --sign-key, protected by secretSignPassphrase
	bundleKey  string // its public half, in trust.bundle_keys
}

func newSecretWorld(t *testing.T) *secretWorld {
	t.Helper()
	w := &secretWorld{
		up:  testupstream.New(t, testupstream.WithToken(secretTFToken)),
		reg: testregistry.New(t, testregistry.WithTLS(), testregistry.WithHtpasswd(secretRegUser, secretRegPass)),
		dir: t.TempDir(),
	}
	w.reg2 = testregistry.New(t, testregistry.WithTLS(), testregistry.WithHtpasswd(secretRegUser, secretRegPass))
	w.up.AddProvider("acme", "widget", "1.0.0", "linux_amd64", "darwin_arm64")
	w.up.AddProvider("acme", "widget", "1.1.0", "linux_amd64")
	w.dockerCfg, w.dockerCfg2 = w.reg.DockerConfig(t), w.reg2.DockerConfig(t)
	w.plan, w.plan2 = filepath.Join(w.dir, "mirror.yaml"), filepath.Join(w.dir, "inside.yaml")
	providers := w.up.Services()["providers.v1"]
	key := testpgp.New(t, "bundle signer", secretSignPassphrase).Write(t, t.TempDir(), "signer")
	w.signKey = key.PrivateFile
	writeMirrorPlan(t, w.plan, w.reg.Host, w.reg.CAFile, w.up.CAFile, providers, key.PublicFile)
	writeMirrorPlan(t, w.plan2, w.reg2.Host, w.reg2.CAFile, w.up.CAFile, providers, key.PublicFile)
	w.bundleKey = key.PublicFile
	t.Setenv("TOFU_OCI_MIRROR_SIGN_PASSPHRASE", secretSignPassphrase)
	t.Setenv("TF_TOKEN_registry_opentofu_org", secretTFToken)
	t.Setenv("GITHUB_TOKEN", secretGitHubToken)
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no stray credentials from the machine
	return w
}

// TestSecretsNeverAppearInOutput runs every command that touches a
// credential, at debug level in both log formats, and searches all it
// wrote for the fake secrets.
func TestSecretsNeverAppearInOutput(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			w := newSecretWorld(t)
			o := newOutputs(t, w.dir)
			common := func(cmd, plan, dockerCfg string, extra ...string) []string {
				return append([]string{cmd, "-c", plan, "--log-level", "debug", "--log-format", format, "--docker-config", dockerCfg}, extra...)
			}
			report := func(name string) []string {
				return []string{"--report", filepath.Join(w.dir, name+".json"), "--metrics-file", filepath.Join(w.dir, name+".prom")}
			}
			o.mustRun(exitPending, common("plan", w.plan, w.dockerCfg, "--detailed-exitcode")...)
			o.mustRun(exitOK, common("plan", w.plan, w.dockerCfg, "--output", "json")...)
			o.mustRun(exitOK, append(common("sync", w.plan, w.dockerCfg, "--no-progress"), report("sync")...)...)
			o.mustRun(exitOK, append(common("sync", w.plan, w.dockerCfg, "--no-progress"), report("sync-again")...)...)
			o.mustRun(exitOK, common("inventory", w.plan2, w.dockerCfg2, "--output", filepath.Join(w.dir, "inventory.json"))...)
			bundlePath := filepath.Join(w.dir, "bundle.tar")
			if err := os.Mkdir(filepath.Join(w.dir, "spool"), 0o755); err != nil {
				t.Fatal(err)
			}
			o.mustRun(exitOK, append(common("export", w.plan, w.dockerCfg, "--no-progress", "--baseline", filepath.Join(w.dir, "inventory.json"),
				"--output", bundlePath, "--stage-dir", filepath.Join(w.dir, "stage"), "--sign-key", w.signKey), report("export")...)...)
			o.mustRun(exitOK, append(common("import", w.plan2, w.dockerCfg2, "--no-progress", "--spool-dir", filepath.Join(w.dir, "spool"), bundlePath), report("import")...)...)
			o.mustRun(exitOK, common("plan", w.plan2, w.dockerCfg2, "--detailed-exitcode")...)
			if _, err := os.Stat(filepath.Join(w.dir, "sync.json")); err != nil {
				t.Fatalf("--report was not written: %v", err)
			}
			if code, _ := o.run("verify", "--help"); code == exitOK {
				o.mustRun(exitOK, common("verify", w.plan2, w.dockerCfg2, "--deep")...)
			}
			// The credentials really were in play: the upstream saw the token.
			sawToken := false
			for _, r := range w.up.Requests() {
				sawToken = sawToken || r.Authorization == "Bearer "+secretTFToken
			}
			if !sawToken {
				t.Fatal("the upstream never received the token; the test proves nothing")
			}
			o.check()
		})
	}
}

// TestSecretsNeverAppearInFailures covers the paths where credentials
// leak most often: errors about them.
func TestSecretsNeverAppearInFailures(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format+"/upstream rejects the token", func(t *testing.T) {
			w := newSecretWorld(t)
			t.Setenv("TF_TOKEN_registry_opentofu_org", secretWrongTFToken)
			o := newOutputs(t, w.dir)
			for _, args := range [][]string{
				{"plan", "--output", "json"},
				{"sync", "--no-progress", "--report", filepath.Join(w.dir, "r.json"), "--metrics-file", filepath.Join(w.dir, "m.prom")},
				{"export", "--no-progress", "--output", filepath.Join(w.dir, "b.tar"), "--report", filepath.Join(w.dir, "e.json")},
			} {
				args = append([]string{args[0], "-c", w.plan, "--log-level", "debug", "--log-format", format, "--docker-config", w.dockerCfg}, args[1:]...)
				if _, errOut := o.mustRunFailing(args...); !strings.Contains(strings.ToLower(errOut), "unauthorized") && !strings.Contains(errOut, "401") {
					t.Fatalf("%v does not say the upstream refused:\n%s", args, errOut)
				}
			}
			o.check()
		})
		t.Run(format+"/registry rejects the password", func(t *testing.T) {
			w := newSecretWorld(t)
			o := newOutputs(t, w.dir)
			bundlePath := filepath.Join(w.dir, "bundle.tar")
			o.mustRun(exitOK, "export", "-c", w.plan, "--no-progress", "--output", bundlePath, "--sign-key", w.signKey)
			wrong := dockerConfigFor(t, w.reg.Host, secretRegUser, secretWrongRegPass)
			for _, args := range [][]string{
				{"plan", "-c", w.plan},
				{"sync", "-c", w.plan, "--no-progress", "--report", filepath.Join(w.dir, "r.json"), "--metrics-file", filepath.Join(w.dir, "m.prom")},
				{"inventory", "-c", w.plan, "--output", filepath.Join(w.dir, "inventory.json")},
				{"import", "-c", w.plan, "--no-progress", "--report", filepath.Join(w.dir, "i.json"), bundlePath},
			} {
				args = append(args, "--log-level", "debug", "--log-format", format, "--docker-config", wrong)
				if _, errOut := o.mustRunFailing(args...); !strings.Contains(strings.ToLower(errOut), "unauthorized") && !strings.Contains(errOut, "401") {
					t.Fatalf("%v does not say the registry refused:\n%s", args, errOut)
				}
			}
			if w.reg.Counts().Pushes() != 0 {
				t.Fatal("pushed with a wrong password")
			}
			o.check()
		})
		t.Run(format+"/upstream echoes the credentials", func(t *testing.T) {
			w := newSecretWorld(t)
			// A hostile or broken registry API that reflects whatever
			// credentials it gets into its answers, headers and redirects.
			var echoed atomic.Bool
			echo := httptest.NewTLSServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				auth := r.Header.Get("Authorization")
				echoed.Store(echoed.Load() || strings.Contains(auth, secretTFToken))
				rw.Header().Set("WWW-Authenticate", `Bearer realm="`+auth+`"`)
				rw.Header().Set("X-Echo", auth)
				switch {
				case strings.Contains(r.URL.Path, "/versions"):
					rw.WriteHeader(http.StatusUnauthorized)
				default:
					rw.WriteHeader(http.StatusInternalServerError)
				}
				fmt.Fprintf(rw, `{"errors":["denied: %s"]}`, auth)
			}))
			t.Cleanup(echo.Close)
			ca := filepath.Join(t.TempDir(), "echo-ca.pem")
			if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: echo.Certificate().Raw}), 0o644); err != nil {
				t.Fatal(err)
			}
			writeMirrorPlan(t, w.plan, w.reg.Host, w.reg.CAFile, ca, echo.URL+"/v1/providers/", w.bundleKey)
			o := newOutputs(t, w.dir)
			for _, args := range [][]string{{"plan"}, {"sync", "--no-progress", "--report", filepath.Join(w.dir, "r.json")}} {
				o.mustRunFailing(append(args, "-c", w.plan, "--log-level", "debug", "--log-format", format, "--docker-config", w.dockerCfg)...)
			}
			if !echoed.Load() {
				t.Fatal("the echoing upstream never received the token; the test proves nothing")
			}
			o.check()
		})
	}
}

// mustRunFailing runs a command that must fail with exitFailed.
func (o *outputs) mustRunFailing(args ...string) (int, string) {
	o.t.Helper()
	code, errOut := o.run(args...)
	if code != exitFailed {
		o.t.Fatalf("%v: exit %d, want %d\nstderr:\n%s", args, code, exitFailed, errOut)
	}
	return code, errOut
}
