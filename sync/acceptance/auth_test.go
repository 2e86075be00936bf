package acceptance

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testtools"
)

// TestAcceptanceAuthenticatedRegistry runs against a registry that demands
// htpasswd credentials. Our tool reads them from a Docker config (flag or
// DOCKER_CONFIG) and OpenTofu from the same file; without them, or with a
// wrong password, our tool fails clearly and pushes nothing.
func TestAcceptanceAuthenticatedRegistry(t *testing.T) { eachTofu(t, scenarioAuthenticatedRegistry) }

func scenarioAuthenticatedRegistry(t *testing.T) {
	t.Parallel()
	const user, pass = "mirror", "correct horse battery staple"
	w := newWorld(t, testregistry.WithHtpasswd(user, pass))
	const version = "1.0.0"
	w.addEcho(version)
	plan := w.writePlan("= "+version, currentPlatform)
	goodConfig := w.reg.DockerConfig(t)
	wrongConfig := dockerConfig(t, w.reg.Host, user, "wrong password")
	repo := "opentofu-providers/" + source

	// Refusals first, while the registry is still empty.
	refusals := []struct {
		name string
		env  []string
		args []string
	}{
		{name: "no credentials"},
		{name: "wrong password in --docker-config", args: []string{"--docker-config", wrongConfig}},
		{name: "wrong password in DOCKER_CONFIG", env: []string{"DOCKER_CONFIG=" + filepath.Dir(wrongConfig)}},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			w := w.sub(t)
			run := w.mustMirror(1, tt.env, append([]string{"sync", "-c", plan, "--no-progress"}, tt.args...)...)
			if !strings.Contains(run.stderr, w.reg.Host) || !strings.Contains(strings.ToLower(run.stderr), "unauthorized") {
				t.Fatalf("the failure does not name the registry %s and say unauthorized:\n%s", w.reg.Host, run.stderr)
			}
		})
	}
	if c := w.reg.Counts(); c.Pushes() != 0 {
		t.Fatalf("refused runs tried to write to the registry: %+v", c)
	}
	if tags := w.tags(repo); len(tags) != 0 {
		t.Fatalf("refused runs left tags %v in %s", tags, repo)
	}

	w.sync(plan, "--docker-config", goodConfig)
	// DOCKER_CONFIG works as well: the plan sees the mirrored version.
	w.mustMirror(0, []string{"DOCKER_CONFIG=" + filepath.Dir(goodConfig)}, "plan", "-c", plan, "--detailed-exitcode")

	// OpenTofu reads the same file. It does not look at DOCKER_CONFIG, so
	// the CLI config names the file.
	creds := fmt.Sprintf("\noci_default_credentials {\n  docker_style_config_files = [%q]\n}\n", goodConfig)
	dir := w.workDir(version)
	w.initAndApply(dir, w.mirrorCLIConfig(plan, creds))
	w.assertInstalled(dir, version)

	// The control: without credentials OpenTofu cannot install either, so
	// the registry really enforced them above.
	t.Run("tofu without credentials", func(t *testing.T) {
		w := w.sub(t)
		noCreds := w.mirrorCLIConfig(plan, "\noci_default_credentials {\n  discover_ambient_credentials = false\n}\n")
		out, err := testtools.RunTofuErr(t, w.tofu, w.workDir(version), w.tofuEnv(noCreds), "init", "-input=false", "-no-color")
		if err == nil {
			t.Fatalf("tofu init installed from a registry that demands credentials without any:\n%s", out)
		}
		// OpenTofu's OCI client (oras-go) gives up before asking the
		// registry when it has no credential for a basic-auth challenge.
		if !strings.Contains(out, "basic credential not found") && !strings.Contains(strings.ToLower(out), "unauthorized") {
			t.Fatalf("tofu init failed, but not for lack of credentials:\n%s", out)
		}
	})
}

// dockerConfig writes a Docker config.json holding user:pass for host and
// returns its path.
func dockerConfig(t *testing.T, host, user, pass string) string {
	t.Helper()
	cfg := map[string]map[string]map[string]string{"auths": {host: {
		"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + pass)),
	}}}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "config.json")
	writeFile(t, path, string(b))
	return path
}
