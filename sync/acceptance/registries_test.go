package acceptance

import (
	"slices"
	"testing"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
)

// TestAcceptanceTokenAuthAnonymousInstall mirrors into a registry with token
// auth and per-repository scopes (distribution's auth.token and the test
// issuer), then OpenTofu installs without any credentials: the issuer gives
// anonymous clients pull, as Harbor's public projects and GHCR's public
// packages do.
func TestAcceptanceTokenAuthAnonymousInstall(t *testing.T) {
	t.Parallel()
	const pass = "s3cret"
	w := newWorld(t, testregistry.WithTokenAuth(testregistry.TokenUser{Name: "mirror", Password: pass, Grants: []testregistry.Grant{
		{Repository: "opentofu-providers/*", Actions: []string{"pull", "push"}},
	}}))
	const version = "1.0.0"
	w.addEcho(version)
	plan := w.writePlan("= "+version, currentPlatform)
	w.sync(plan, "--docker-config", w.reg.DockerConfigFor(t, "mirror", pass))
	w.mustMirror(0, nil, "verify", "-c", plan, "--docker-config", w.reg.DockerConfigFor(t, "mirror", pass))

	noCreds := w.mirrorCLIConfig(plan, "\noci_default_credentials {\n  discover_ambient_credentials = false\n}\n")
	dir := w.workDir(version)
	w.initAndApply(dir, noCreds)
	w.assertInstalled(dir, version)

	repo := "opentofu-providers/" + source
	anonymousPull := slices.ContainsFunc(w.reg.Issuer.Issued(), func(tok testregistry.IssuedToken) bool {
		return tok.User == "" && slices.ContainsFunc(tok.Access, func(a testregistry.TokenAccess) bool {
			return a.Name == repo && slices.Contains(a.Actions, "pull")
		})
	})
	if !anonymousPull {
		t.Fatalf("OpenTofu installed without an anonymous pull token for %s; issued: %+v", repo, w.reg.Issuer.Issued())
	}
}

// TestAcceptanceGoContainerRegistry runs sync, verify and a real tofu init
// against the second registry implementation, which has a referrers API.
func TestAcceptanceGoContainerRegistry(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testregistry.WithImplementation(testregistry.GoContainerRegistry))
	const version = "1.0.0"
	w.addEcho(version)
	plan := w.writePlan("= "+version, currentPlatform)
	w.sync(plan)
	w.mustMirror(0, nil, "verify", "-c", plan)
	repo := "opentofu-providers/" + source
	if tags := w.tags(repo); !slices.Equal(tags, []string{version}) {
		t.Fatalf("tags %v: want only %s (a sha256- fallback tag means the referrers API went unused)", tags, version)
	}
	dir := w.workDir(version)
	w.initAndApply(dir, w.mirrorCLIConfig(plan, ""))
	w.assertInstalled(dir, version)
}
