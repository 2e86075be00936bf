package engine_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regclient/regclient"
	"github.com/regclient/regclient/scheme/reg"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testupstream"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/engine"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/faulttest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/target"
)

// These tests run the engine against registries and upstreams that fail on
// purpose, and check the promise made to OpenTofu: a version tag appears
// only when all its platforms are in place, and a rerun finishes the job
// without uploading again what is already there.

// fastRetries makes regclient retry quickly, so a test that outlasts a
// registry's retries takes milliseconds rather than seconds.
func fastRetries(limit int) target.Option {
	return target.WithRegClientOptions(regclient.WithRegOpts(reg.WithDelay(5*time.Millisecond, 50*time.Millisecond), reg.WithRetryLimit(limit)))
}

// syncWith runs plan and execute as h.sync does, with target options.
func (h *harness) syncWith(cfg *config.Config, opts ...target.Option) (*engine.Plan, *item.Run) {
	h.t.Helper()
	up, _ := h.clients(cfg)
	tg, err := target.Open(cfg.Target, opts...)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx := context.Background()
	p := engine.New(up, tg, nil).Plan(ctx, cfg, tg.String())
	if err := p.Errors(); err != nil {
		h.t.Fatalf("plan: %v", err)
	}
	return p, engine.New(up, tg, tg, engine.WithSpoolDir(h.t.TempDir()), engine.WithConcurrency(2)).Execute(ctx, p)
}

const threeVersions = `
platforms: [linux_amd64, darwin_arm64, windows_amd64]
providers:
  - source: acme/widget
    versions: ">= 1.0.0"
`

var widgetPlatforms = []string{"darwin_arm64", "linux_amd64", "windows_amd64"}

func addWidgets(up *testupstream.Server) {
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		up.AddProvider("acme", "widget", v, widgetPlatforms...)
	}
}

// assertOnlyCompleteVersions checks OpenTofu's view of the repository:
// every version tag is a valid index holding every wanted platform, whose
// manifests and blobs all exist. It returns the version tags.
func (h *harness) assertOnlyCompleteVersions(repo string, platforms []string) []string {
	h.t.Helper()
	tags, err := faulttest.CompleteProviderVersions(context.Background(), h.reg.Client(), h.reg.Host, repo, platforms)
	if err != nil {
		h.t.Error(err)
	}
	return tags
}

func TestIntermittentRegistryErrorsAreRetried(t *testing.T) {
	faults := &faulttest.RegistryFaults{}
	// Spread out, as a flaky load balancer would: regclient tolerates a
	// few failures per host before it stops retrying. The run makes 17
	// blob PUTs (9 zips, the empty config once, 3 versions' SHA256SUMS and
	// signatures, the shared key once), so the last one fails too.
	faults.FailBlobPut(1, 9, 17)
	faults.FailManifestPut(2, 12)
	h := newHarness(t, testregistry.WithMiddleware(faults.Middleware))
	addWidgets(h.up)
	cfg := h.config(threeVersions)
	start := time.Now()
	_, res := h.syncWith(cfg, fastRetries(5))
	if err := res.Err(); err != nil {
		t.Fatalf("a registry failing %d requests now and then failed the sync: %v", faults.Failed(), err)
	}
	t.Logf("sync with %d injected 500s took %s", faults.Failed(), time.Since(start))
	if faults.Failed() != 5 {
		t.Fatalf("%d failures injected, want 5: the test did not exercise what it says", faults.Failed())
	}
	tags := h.assertOnlyCompleteVersions("opentofu-providers/acme/widget", widgetPlatforms)
	assertLines(t, tags, "1.0.0", "1.1.0", "1.2.0")

	// The same content, digest for digest, as a registry that never failed.
	clean := newHarness(t)
	clean.up = h.up
	clean.mustSync(clean.config(threeVersions))
	repo := []string{"opentofu-providers/acme/widget"}
	got, err := faulttest.TagDigests(context.Background(), h.reg.Client(), h.reg.Host, repo...)
	if err != nil {
		t.Fatal(err)
	}
	want, err := faulttest.TagDigests(context.Background(), clean.reg.Client(), clean.reg.Host, repo...)
	if err != nil {
		t.Fatal(err)
	}
	assertLines(t, got, want...)
}

func TestRegistryStoppedMidSync(t *testing.T) {
	tests := []struct {
		name     string
		stopWhen func(faulttest.Progress) bool
	}{
		{"inside the first version", func(p faulttest.Progress) bool { return p.Stored >= 4 }},
		{"after a version was tagged", func(p faulttest.Progress) bool { return p.IsTag && p.TagPuts == 2 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			faults := &faulttest.RegistryFaults{}
			h := newHarness(t, testregistry.WithMiddleware(faults.Middleware))
			faults.StopWhen(tt.stopWhen, h.reg.Stop)
			addWidgets(h.up)
			cfg := h.config(threeVersions)
			repo := "opentofu-providers/acme/widget"

			start := time.Now()
			_, res := h.syncWith(cfg, fastRetries(3))
			took := time.Since(start)
			err := res.Err()
			if err == nil {
				t.Fatal("the sync succeeded although the registry stopped")
			}
			if !errors.Is(err, target.ErrTarget) {
				t.Errorf("the failure does not say the target failed: %v", err)
			}
			failed, done := res.Count(item.Failed), res.Count(item.Done)
			if failed == 0 || failed+done != 3 {
				t.Fatalf("want every version accounted for, some failed: %+v", res.Items)
			}
			for _, it := range res.Items {
				if it.State == item.Failed && (!strings.Contains(it.ErrorText(), "acme/widget "+it.Version) || !strings.Contains(it.ErrorText(), h.reg.Host)) {
					t.Errorf("the failure of %s does not name the version and the registry: %s", it.Version, it.ErrorText())
				}
			}
			firstStored := faults.Stored()
			t.Logf("stopped after %d blobs; the run failed %d of 3 versions in %s", len(firstStored), failed, took)

			faults.Reset()
			h.reg.Restart()
			h.reg.ResetCounts()
			// A tag whose answer the stop swallowed may be there although
			// its item failed; one reported done must be.
			tags := h.assertOnlyCompleteVersions(repo, widgetPlatforms)
			for _, it := range res.Items {
				if it.State == item.Done && !slices.Contains(tags, it.Tag) {
					t.Errorf("%s reported done but not tagged: %v", it.Version, tags)
				}
			}

			start = time.Now()
			_, res = h.syncWith(cfg, fastRetries(3))
			if err := res.Err(); err != nil {
				t.Fatalf("rerun after the registry came back: %v", err)
			}
			assertLines(t, h.assertOnlyCompleteVersions(repo, widgetPlatforms), "1.0.0", "1.1.0", "1.2.0")
			for _, d := range faults.StoredAgain(firstStored) {
				t.Errorf("blob %s was uploaded again, though the registry stored it before it stopped", d)
			}
			pushes := h.reg.Counts().Pushes()
			if pushes == 0 {
				t.Error("the rerun wrote nothing: the first run cannot have stopped mid-sync")
			}
			t.Logf("the rerun uploaded %d blobs (none of the %d already stored), %d writes in all, in %s", len(faults.Stored()), len(firstStored), pushes, time.Since(start))
		})
	}
}

func TestUpstreamFailingOnePlatformHidesOnlyThatVersion(t *testing.T) {
	faults := &faulttest.RegistryFaults{}
	h := newHarness(t, testregistry.WithMiddleware(faults.Middleware))
	addWidgets(h.up)
	cfg := h.config(threeVersions)
	repo := "opentofu-providers/acme/widget"
	// Every version's linux zip drops once mid-download (retried from the
	// spool file); 1.1.0's windows zip is cut short on every attempt.
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		h.up.MisbehaveNext("/files/acme/widget/"+v+"/terraform-provider-widget_"+v+"_linux_amd64.zip", 1, testupstream.DropConnection(1000))
	}
	broken := "/files/acme/widget/1.1.0/terraform-provider-widget_1.1.0_windows_amd64.zip"
	h.up.MisbehaveNext(broken, 99, testupstream.TruncateBody(1000))

	_, res := h.syncWith(cfg)
	if res.Count(item.Done) != 2 || res.Count(item.Failed) != 1 {
		t.Fatalf("want 1.0.0 and 1.2.0 done and 1.1.0 failed: %+v", res.Items)
	}
	if err := res.Err(); !strings.Contains(err.Error(), "1.1.0 windows_amd64") || !strings.Contains(err.Error(), broken) {
		t.Errorf("the failure does not name the platform and the URL: %v", err)
	}
	assertLines(t, h.assertOnlyCompleteVersions(repo, widgetPlatforms), "1.0.0", "1.2.0")
	firstStored := faults.Stored()

	// The link recovers: the rerun fetches only the missing package.
	h.up.ResetCounts()
	h.up.ClearFaults()
	faults.Reset()
	_, res = h.syncWith(cfg)
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	assertLines(t, h.assertOnlyCompleteVersions(repo, widgetPlatforms), "1.0.0", "1.1.0", "1.2.0")
	for _, d := range faults.StoredAgain(firstStored) {
		t.Errorf("blob %s uploaded again", d)
	}
	if c := h.up.Counts(); c.Zip != 1 {
		t.Errorf("the rerun downloaded %d zips, want only 1.1.0's windows one", c.Zip)
	}
}

// TestDeadRegistryFailsFast: with the target options the CLI uses
// (regclient's default delays), a registry that goes away mid-sync used to
// make every remaining request wait out regclient's per-host backoff, one
// after another (3 versions x 3 platforms took 2m51s to fail; hundreds of
// versions would hold a cron slot for hours). Now only the calls already in
// flight wait; every later item fails at once as not attempted.
func TestDeadRegistryFailsFast(t *testing.T) {
	faults := &faulttest.RegistryFaults{}
	h := newHarness(t, testregistry.WithMiddleware(faults.Middleware))
	faults.StopWhen(func(p faulttest.Progress) bool { return p.Stored >= 4 }, h.reg.Stop)
	addWidgets(h.up)
	start := time.Now()
	_, res := h.syncWith(h.config(threeVersions))
	took := time.Since(start)
	if res.Err() == nil {
		t.Fatal("the sync succeeded although the registry stopped")
	}
	// Without the breaker each version would wait out regclient's
	// backoff in turn (minutes for 9 packages). With it the run ends
	// within one backoff: 2-4 s when a call meets the refused connection
	// at once, about 20 s when every call in flight is already waiting in
	// regclient's per-host backoff when the registry goes.
	if took > 30*time.Second {
		t.Fatalf("a dead registry took %s to fail a 9-package sync: %v", took, res.Err())
	}
	notAttempted := 0
	for _, it := range res.Items {
		if errors.Is(it.Err, target.ErrTargetDown) {
			notAttempted++
		}
	}
	if notAttempted == 0 {
		t.Fatalf("no item was skipped once the registry was gone: %v", res.Err())
	}
}

// TestManifest503IsRetried: regclient retries 500, 502, 504 and
// 429 but gives up on the first 503 Service Unavailable for a manifest
// PUT (internal/reghttp: the default branch backs off and drops the host),
// so one 503 from a busy registry fails the version for this run.
// Blob uploads survive a 503 only because regclient falls back to a
// chunked upload.
func TestManifest503IsRetried(t *testing.T) {
	var mu sync.Mutex
	n := 0
	mw := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fail := false
			if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") {
				mu.Lock()
				n++
				fail = n == 2
				mu.Unlock()
			}
			if fail {
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	h := newHarness(t, testregistry.WithMiddleware(mw))
	addWidgets(h.up)
	_, res := h.syncWith(h.config(threeVersions), fastRetries(5))
	if err := res.Err(); err != nil || res.Count(item.Done) != 3 {
		t.Fatalf("one 503 on a manifest PUT failed the sync: %v", err)
	}
}
