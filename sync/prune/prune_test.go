package prune_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient/types/descriptor"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testupstream"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/engine"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/prune"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/target"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/upstream"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/verify"
)

const repo = "opentofu-providers/acme/widget"

// world is a test upstream with widget 1.0.0, 1.1.0 and 1.2.0 on two
// platforms, synced into a distribution registry.
type world struct {
	t       *testing.T
	up      *testupstream.Server
	reg     *testregistry.Registry
	deletes atomic.Int64
}

func newWorld(t *testing.T, opts ...testregistry.Option) *world {
	w := &world{t: t, up: testupstream.New(t)}
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		w.up.AddProvider("acme", "widget", v, "linux_amd64", "darwin_arm64")
	}
	count := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodDelete {
				w.deletes.Add(1)
			}
			next.ServeHTTP(rw, r)
		})
	}
	w.reg = testregistry.New(t, append(opts, testregistry.WithMiddleware(count))...)
	w.sync(w.config(`">= 1.0.0"`, 0))
	return w
}

func (w *world) config(constraint string, newest int) *config.Config {
	w.t.Helper()
	keep := ""
	if newest > 0 {
		keep = fmt.Sprintf("\n    newest: %d", newest)
	}
	yaml := fmt.Sprintf(`version: 1
target:
  registry: %q
  insecure: true
upstream:
  ca_file: %q
  hosts:
    registry.opentofu.org:
      services:
        providers.v1: %q
platforms: [linux_amd64, darwin_arm64]
providers:
  - source: acme/widget
    versions: %s%s
`, w.reg.Host, w.up.CAFile, w.up.Services()["providers.v1"], constraint, keep)
	cfg, err := config.Parse("mirror.yaml", []byte(yaml))
	if err != nil {
		w.t.Fatal(err)
	}
	return cfg
}

func (w *world) target(cfg *config.Config) *target.Target {
	tg, err := target.Open(cfg.Target)
	if err != nil {
		w.t.Fatal(err)
	}
	return tg
}

func (w *world) sync(cfg *config.Config) {
	w.t.Helper()
	hosts := map[string]map[string]string{}
	for h, o := range cfg.Upstream.Hosts {
		hosts[h] = o.Services
	}
	up, err := upstream.New(upstream.WithCAFile(cfg.Upstream.CAFile), upstream.WithHostServices(hosts))
	if err != nil {
		w.t.Fatal(err)
	}
	tg := w.target(cfg)
	ctx := context.Background()
	if err := engine.New(up, tg, tg, engine.WithSpoolDir(w.t.TempDir())).Execute(ctx, engine.New(up, tg, nil).Plan(ctx, cfg, "")).Err(); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) tags() []string {
	w.t.Helper()
	tags, err := w.target(w.config(`">= 1.0.0"`, 0)).Tags(context.Background(), repo)
	if err != nil {
		w.t.Fatal(err)
	}
	return tags
}

// versionTags are the tags without the sha256-<hex> referrer fallbacks.
func (w *world) versionTags() string {
	return strings.Join(slices.DeleteFunc(w.tags(), func(s string) bool { return strings.HasPrefix(s, "sha256-") }), " ")
}

func (w *world) exists(tg *target.Target, d string) bool {
	w.t.Helper()
	ok, err := tg.ManifestExists(context.Background(), repo, digest.Digest(d))
	if err != nil {
		w.t.Fatal(err)
	}
	return ok
}

func states(rep *prune.Report) string {
	var out []string
	for _, c := range rep.Candidates {
		out = append(out, c.Tag+":"+string(c.State))
	}
	return strings.Join(out, " ")
}

// TestPruneListsThenDeletesWhatThePlanNoLongerSelects: with newest: 1,
// 1.0.0 and 1.1.0 are no longer selected. A foreign tag pointing at
// 1.0.0's index keeps that version (deleting by digest would take the
// foreign tag along); a version tag holding something that is not a
// provider index (a conflict) and a foreign non-version tag stay. The
// listing deletes nothing; --apply deletes 1.1.0's index with its tag,
// its platform manifests and its provenance with the fallback tag; 1.2.0
// still verifies; a second run has nothing left.
func TestPruneListsThenDeletesWhatThePlanNoLongerSelects(t *testing.T) {
	w := newWorld(t, testregistry.WithDelete())
	cfg := w.config(`">= 0.1.0"`, 1)
	tg := w.target(cfg)
	ctx := context.Background()

	raw, desc, err := tg.Manifest(ctx, repo, "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if err := tg.PutManifest(ctx, repo, manifest.Artifact{Descriptor: desc, Raw: raw}, "latest"); err != nil {
		t.Fatal(err)
	}
	blob := []byte("not a provider")
	bd := descriptor.Descriptor{MediaType: "archive/zip", Digest: digest.SHA256.FromBytes(blob), Size: int64(len(blob))}
	if err := tg.PutBlob(ctx, repo, bd, bytes.NewReader(blob)); err != nil {
		t.Fatal(err)
	}
	foreign, err := manifest.ModulePackage(bd)
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"0.5.0", "notes"} {
		if err := tg.PutManifest(ctx, repo, foreign, tag); err != nil {
			t.Fatal(err)
		}
	}
	before := w.tags()

	listed, err := prune.Run(ctx, cfg, tg)
	if err != nil {
		t.Fatal(err)
	}
	if got := states(listed); got != "0.5.0:kept 1.0.0:kept 1.1.0:listed" {
		t.Fatalf("listing: %s", got)
	}
	if w.deletes.Load() != 0 || !slices.Equal(w.tags(), before) {
		t.Fatalf("the listing deleted: %d DELETEs", w.deletes.Load())
	}
	doomed := listed.Candidates[2]
	if len(doomed.Children) != 2 || len(doomed.Provenance) != 1 || doomed.Reason != "older than the 1 newest" {
		t.Fatalf("candidate: %+v", doomed)
	}
	if !strings.Contains(listed.Candidates[0].Detail, "not a provider index") || !strings.Contains(listed.Candidates[1].Detail, "tag latest") {
		t.Fatalf("kept without the reason: %+v", listed.Candidates[:2])
	}
	fallback := "sha256-" + digest.Digest(doomed.Digest).Encoded()
	if !slices.Contains(before, fallback) {
		t.Fatalf("no fallback tag %s among %v", fallback, before)
	}

	applied, err := prune.Run(ctx, cfg, tg, prune.WithApply(true))
	if err != nil {
		t.Fatal(err)
	}
	if got := states(applied); got != "0.5.0:kept 1.0.0:kept 1.1.0:deleted" {
		t.Fatalf("apply: %s", got)
	}
	if got := w.versionTags(); got != "0.5.0 1.0.0 1.2.0 latest notes" {
		t.Fatalf("tags after prune: %s", got)
	}
	if slices.Contains(w.tags(), fallback) {
		t.Errorf("the fallback tag %s of the pruned index is still there", fallback)
	}
	for _, d := range append(append([]string{doomed.Digest}, doomed.Children...), doomed.Provenance...) {
		if w.exists(tg, d) {
			t.Errorf("%s is still in the registry", d)
		}
	}
	if rep, err := verify.Run(ctx, cfg, tg); err != nil || len(rep.Problems) != 0 || rep.Checked != 1 {
		t.Fatalf("verify after prune: %v %+v", err, rep)
	}

	w.deletes.Store(0)
	again, err := prune.Run(ctx, cfg, tg, prune.WithApply(true))
	if err != nil || again.Count(prune.Deleted)+again.Count(prune.Listed) != 0 || w.deletes.Load() != 0 {
		t.Fatalf("second prune: %v %s, %d DELETEs", err, states(again), w.deletes.Load())
	}
}

// TestPruneRefusals: a plan without entries is refused; a registry that
// forbids deletes stops the run with ErrDeleteForbidden and every tag stays.
func TestPruneRefusals(t *testing.T) {
	w := newWorld(t) // deletes disabled
	cfg := w.config(`">= 1.0.0"`, 1)
	tg := w.target(cfg)
	ctx := context.Background()
	before := w.tags()
	rep, err := prune.Run(ctx, cfg, tg, prune.WithApply(true))
	if !errors.Is(err, target.ErrDeleteForbidden) {
		t.Fatalf("apply on a registry without deletes: %v", err)
	}
	if rep.Count(prune.Failed) != 1 || rep.Count(prune.Deleted) != 0 || w.deletes.Load() != 1 {
		t.Fatalf("want one refused DELETE and a stop: %s, %d DELETEs", states(rep), w.deletes.Load())
	}
	if !slices.Equal(w.tags(), before) {
		t.Fatalf("tags changed: %v -> %v", before, w.tags())
	}

	empty, err := config.Parse("mirror.yaml", []byte(fmt.Sprintf("version: 1\ntarget:\n  registry: %q\n  insecure: true\n", w.reg.Host)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := prune.Run(ctx, empty, tg, prune.WithApply(true)); !errors.Is(err, prune.ErrNoEntries) {
		t.Fatalf("empty plan: %v", err)
	}
}
