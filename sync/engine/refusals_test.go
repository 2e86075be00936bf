package engine_test

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/engine"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/target"
)

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSyncBehindBodyLimit is nginx's client_max_body_size in front of the
// registry (1 MiB here, for 3 MiB packages): the first package's
// monolithic upload is answered 413 and uploaded again in chunks below the
// limit; the run remembers, so the second package goes in chunks at once.
// Every version is published, content identical. On both implementations.
func TestSyncBehindBodyLimit(t *testing.T) {
	for _, impl := range []testregistry.Implementation{testregistry.Distribution, testregistry.GoContainerRegistry} {
		t.Run(impl.String(), func(t *testing.T) {
			limit := &testregistry.BodyLimit{Max: 1 << 20}
			h := newHarness(t, testregistry.WithImplementation(impl), testregistry.WithMiddleware(limit.Middleware()))
			h.up.AddProviderZip("acme", "widget", "1.0.0", "linux_amd64", randomBytes(t, 3<<20))
			h.up.AddProviderZip("acme", "widget", "1.1.0", "linux_amd64", randomBytes(t, 3<<20))
			cfg := h.config(linuxPlan)
			up, _ := h.clients(cfg)
			tg := h.target(cfg)
			ctx := context.Background()
			p := engine.New(up, tg, nil).Plan(ctx, cfg, tg.String())
			// One transfer at a time, so "remembered" is measurable.
			res := engine.New(up, tg, tg, engine.WithConcurrency(1), engine.WithSpoolDir(t.TempDir())).Execute(ctx, p)
			if err := res.Err(); err != nil {
				t.Fatalf("sync behind a 1 MiB body limit: %v", err)
			}
			if res.Count(item.Done) != 2 {
				t.Fatalf("done %d, want 2", res.Count(item.Done))
			}
			if n := limit.Refused(); n != 1 {
				t.Errorf("%d uploads refused with 413, want 1: the limit is not remembered for the second package", n)
			}
			if c := h.reg.Counts(); c.BlobUploadPatch < 6 {
				t.Errorf("%d PATCHes, want the two packages in chunks: %+v", c.BlobUploadPatch, c)
			}
			rep := h.verify(cfg, true)
			assertFindings(t, "problems", rep.Problems)
		})
	}
}

// TestSyncNamesAMissingRepository is ECR without create-on-push: the
// error says the repository does not exist, quotes the registry and says
// what to configure.
func TestSyncNamesAMissingRepository(t *testing.T) {
	repos := testregistry.NewRepositories()
	h := newHarness(t, testregistry.WithMiddleware(repos.Middleware()))
	h.up.AddProvider("acme", "widget", "1.0.0", "linux_amd64")
	_, res := h.syncWith(h.config(linuxPlan), fastRetries(1))
	err := res.Err()
	if !errors.Is(err, target.ErrRepositoryMissing) {
		t.Fatalf("error %v, want ErrRepositoryMissing", err)
	}
	for _, want := range []string{"repository does not exist: opentofu-providers/acme/widget", "404 NAME_UNKNOWN", "CREATE_ON_PUSH"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

// TestSyncNamesARefusedMediaType is a media type allowlist without
// OpenTofu's types (Quay without ALLOWED_OCI_ARTIFACT_TYPES, GitLab): the
// error names the manifest's types, quotes the registry and gives the
// hint doctor gives.
func TestSyncNamesARefusedMediaType(t *testing.T) {
	allow := &testregistry.MediaTypeAllowlist{Allowed: []string{manifest.ZipLayerMediaType}}
	h := newHarness(t, testregistry.WithMiddleware(allow.Middleware()))
	h.up.AddProvider("acme", "widget", "1.0.0", "linux_amd64")
	_, res := h.syncWith(h.config(linuxPlan), fastRetries(1))
	err := res.Err()
	if !errors.Is(err, target.ErrMediaTypeRefused) {
		t.Fatalf("error %v, want ErrMediaTypeRefused", err)
	}
	for _, want := range []string{manifest.ProviderTargetArtifactType, `400 MANIFEST_INVALID: manifest invalid: media type "` + manifest.ProviderTargetArtifactType + `" is not allowed`, "ALLOWED_OCI_ARTIFACT_TYPES", "doctor"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}
