package acceptance

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/verify"
)

// TestAcceptanceTokenAuthAnonymousInstall mirrors into a registry with token
// auth and per-repository scopes (distribution's auth.token and the test
// issuer), then OpenTofu installs without any credentials: the issuer gives
// anonymous clients pull, as Harbor's public projects and GHCR's public
// packages do.
func TestAcceptanceTokenAuthAnonymousInstall(t *testing.T) {
	eachTofu(t, scenarioTokenAuthAnonymousInstall)
}

func scenarioTokenAuthAnonymousInstall(t *testing.T) {
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
func TestAcceptanceGoContainerRegistry(t *testing.T) { eachTofu(t, scenarioGoContainerRegistry) }

func scenarioGoContainerRegistry(t *testing.T) {
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

// registrySetup is a registry implementation and the documented behaviour
// of a closed registry in front of it; options builds fresh middleware
// state for each registry of a scenario.
type registrySetup struct {
	name    string
	options func() []testregistry.Option
	// provenanceTag is the kind of tag provenance leaves besides the
	// version: "sha256-" (referrers fallback), "tofu-provenance-"
	// (detached, the registry refuses subject) or "" (referrers API).
	provenanceTag string
}

func registrySetups() []registrySetup {
	impl := testregistry.WithImplementation
	return []registrySetup{
		{"go-containerregistry with referrers", func() []testregistry.Option {
			return []testregistry.Option{impl(testregistry.GoContainerRegistry)}
		}, ""},
		{"go-containerregistry without referrers", func() []testregistry.Option {
			return []testregistry.Option{impl(testregistry.GoContainerRegistryNoReferrers)}
		}, "sha256-"},
		{"distribution, ECR's 405 on subject", func() []testregistry.Option {
			return []testregistry.Option{testregistry.WithMiddleware(testregistry.RefuseSubject())}
		}, "tofu-provenance-"},
		{"go-containerregistry, ECR's 405 on subject", func() []testregistry.Option {
			return []testregistry.Option{impl(testregistry.GoContainerRegistry), testregistry.WithMiddleware(testregistry.RefuseSubject())}
		}, "tofu-provenance-"},
		{"distribution, nginx client_max_body_size 1m", func() []testregistry.Option {
			return []testregistry.Option{testregistry.WithMiddleware((&testregistry.BodyLimit{Max: 1 << 20}).Middleware())}
		}, "sha256-"},
		{"go-containerregistry, nginx client_max_body_size 1m", func() []testregistry.Option {
			return []testregistry.Option{impl(testregistry.GoContainerRegistry), testregistry.WithMiddleware((&testregistry.BodyLimit{Max: 1 << 20}).Middleware())}
		}, ""},
		{"distribution, ECR repositories created beforehand", func() []testregistry.Option {
			return []testregistry.Option{testregistry.WithMiddleware(testregistry.NewRepositories(repository).Middleware())}
		}, "sha256-"},
	}
}

// verifyClean runs verify with JSON output and fails on any problem or a
// version whose provenance it did not find.
func (w *world) verifyClean(plan string) {
	w.t.Helper()
	run := w.mustMirror(0, nil, "verify", "-c", plan, "--output", "json")
	var rep verify.Report
	if err := json.Unmarshal([]byte(run.stdout), &rep); err != nil {
		w.t.Fatalf("verify json: %v\n%s", err, run.stdout)
	}
	if len(rep.Problems) != 0 || rep.Checked == 0 {
		w.t.Fatalf("verify: %d checked, problems %v", rep.Checked, rep.Problems)
	}
	for _, p := range rep.Warnings {
		if p.Code == verify.WarningNoProvenance {
			w.t.Fatalf("verify did not find the provenance: %v", p)
		}
	}
}

// checkProvenanceTags checks the repository's tags: the version, and the
// provenance tag the registry's behaviour leads to.
func (w *world) checkProvenanceTags(version, prefix string) {
	w.t.Helper()
	tags := w.tags(repository)
	var others []string
	for _, tag := range tags {
		if tag != version {
			others = append(others, tag)
		}
	}
	if !slices.Contains(tags, version) || len(others) > 1 || (prefix == "") != (len(others) == 0) || (prefix != "" && !strings.HasPrefix(others[0], prefix)) {
		w.t.Fatalf("tags %v: want %s and a provenance tag starting %q (none for the referrers API)", tags, version, prefix)
	}
}

// TestAcceptanceRegistryBehaviours runs sync, verify, export, import and
// a real tofu init against the second registry implementation (with and
// without its referrers API) and behind each emulated behaviour of closed
// registries that still lets OpenTofu install: a direct sync into one
// registry, and a signed bundle imported into a second one of the same
// kind; OpenTofu installs from both.
func TestAcceptanceRegistryBehaviours(t *testing.T) {
	for _, setup := range registrySetups() {
		t.Run(setup.name, func(t *testing.T) { eachTofu(t, func(t *testing.T) { registryBehaviour(t, setup) }) })
	}
}

// registryBehaviour is one setup of [TestAcceptanceRegistryBehaviours].
func registryBehaviour(t *testing.T, setup registrySetup) {
	{
		{
			w := newWorld(t, setup.options()...)
			const version = "1.0.0"
			w.addEcho(version)
			plan := w.writePlan("= "+version, currentPlatform)
			w.sync(plan)
			w.verifyClean(plan)
			w.checkProvenanceTags(version, setup.provenanceTag)
			dir := w.workDir(version)
			w.initAndApply(dir, w.mirrorCLIConfig(plan, ""))
			w.assertInstalled(dir, version)

			inside := w.sub(t)
			inside.reg = testregistry.New(t, append([]testregistry.Option{testregistry.WithTLS()}, setup.options()...)...)
			inside.dir = t.TempDir()
			inside.caBundle = filepath.Join(inside.dir, "ca-bundle.pem")
			writeFile(t, inside.caBundle, string(inside.reg.CACertPEM))
			insidePlan := inside.writePlan("= "+version, currentPlatform)
			inv := filepath.Join(inside.dir, "inventory.json")
			inside.mustMirror(0, nil, "inventory", "-c", insidePlan, "--output", inv)
			outside := w.sub(t)
			outside.dir = t.TempDir()
			bundle := filepath.Join(outside.dir, "bundle.tar")
			outside.mustMirror(0, nil, "export", "-c", outside.writePlan("= "+version, currentPlatform), "--baseline", inv, "--output", bundle, "--no-progress", "--sign-key", outside.bundleKey.PrivateFile)
			imp := inside.mustMirror(0, nil, "import", "-c", insidePlan, bundle, "--no-progress")
			if !strings.Contains(imp.stdout, "1 copied") || !strings.Contains(imp.stdout, "Provenance: ") {
				t.Fatalf("import summary: %s", imp)
			}
			inside.verifyClean(insidePlan)
			inside.checkProvenanceTags(version, setup.provenanceTag)
			work := inside.workDir(version)
			inside.initAndApply(work, inside.mirrorCLIConfig(insidePlan, ""))
			inside.assertInstalled(work, version)
		}
	}
}
