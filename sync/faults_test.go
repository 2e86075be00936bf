package sync_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/regclient/regclient"
	"github.com/regclient/regclient/scheme/reg"
	"github.com/regclient/regclient/types/errs"
	"github.com/regclient/regclient/types/ref"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testupstream"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync"
)

// These tests run the engine against registries and upstreams that fail on
// purpose, and check the promise made to OpenTofu: a version tag appears
// only when all its platforms are in place, and a rerun finishes the job
// without uploading again what is already there.

// fastRetries makes regclient retry quickly, so a test that outlasts a
// registry's retries takes milliseconds rather than seconds.
func fastRetries(limit int) sync.TargetOption {
	return sync.WithRegClientOptions(regclient.WithRegOpts(reg.WithDelay(5*time.Millisecond, 50*time.Millisecond), reg.WithRetryLimit(limit)))
}

// syncWith runs plan and execute as h.sync does, with target options.
func (h *harness) syncWith(cfg *config.Config, opts ...sync.TargetOption) (*sync.Plan, *sync.Result) {
	h.t.Helper()
	up, _ := h.clients(cfg)
	tg, err := sync.OpenTarget(cfg.Target, opts...)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx := context.Background()
	p := sync.NewPlanner(up, tg).Plan(ctx, cfg, tg.String())
	if err := p.Errors(); err != nil {
		h.t.Fatalf("plan: %v", err)
	}
	return p, sync.NewExecutor(up, tg, sync.WithSpoolDir(h.t.TempDir()), sync.WithConcurrency(2)).Execute(ctx, p)
}

// writeLog watches a registry's write requests: it can fail some with 500
// before the registry sees them, stop the registry at a chosen moment, and
// records the digest of every blob the registry stored.
type writeLog struct {
	mu gosync.Mutex
	// failBlobPut and failManifestPut fail those requests whose 1-based
	// number (per kind, since the last reset) is listed.
	failBlobPut, failManifestPut []int
	blobPuts, manifestPuts       int
	failed                       int
	stored                       []string // digests of blobs stored, in order
	tagPuts                      int      // version-tag PUTs that arrived
	// stopWhen is asked as each blob-upload PUT or version-tag PUT
	// arrives; true makes stop run and cuts this and every later request
	// off before the registry sees it, as a registry that dies would.
	stopWhen func(stored, tagPuts int, isTag bool) bool
	stop     func()
	down     bool
}

func (l *writeLog) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		isUpload := r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/")
		isManifest := r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/")
		// Version tags only: not digests, nor regclient's referrers fallback tags.
		isTag := isManifest && !strings.HasPrefix(r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:], "sha256")
		l.mu.Lock()
		fail := false
		switch {
		case isUpload:
			l.blobPuts++
			fail = slices.Contains(l.failBlobPut, l.blobPuts)
		case isManifest:
			l.manifestPuts++
			fail = slices.Contains(l.failManifestPut, l.manifestPuts)
		}
		if isTag {
			l.tagPuts++
		}
		if fail {
			l.failed++
		}
		if !l.down && l.stopWhen != nil && (isUpload || isTag) && l.stopWhen(len(l.stored), l.tagPuts, isTag) {
			l.down = true
			go l.stop()
		}
		down := l.down
		l.mu.Unlock()
		switch {
		case down:
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				_ = conn.Close()
			}
			return
		case fail:
			http.Error(w, `{"errors":[{"code":"UNKNOWN","message":"injected failure"}]}`, http.StatusInternalServerError)
			return
		}
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if isUpload && rec.status == http.StatusCreated {
			l.mu.Lock()
			l.stored = append(l.stored, r.URL.Query().Get("digest"))
			l.mu.Unlock()
		}
	})
}

// reset forgets what was seen and injected, for a second run.
func (l *writeLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failBlobPut, l.failManifestPut, l.stopWhen, l.stop = nil, nil, nil, nil
	l.blobPuts, l.manifestPuts, l.failed, l.tagPuts, l.stored, l.down = 0, 0, 0, 0, nil, false
}

func (l *writeLog) storedDigests() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.stored)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

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
// manifests and layer blobs all exist (readIndex fails otherwise). It
// returns the tags.
func (h *harness) assertOnlyCompleteVersions(repo string, platforms []string) []string {
	h.t.Helper()
	r, err := ref.New(h.reg.Host + "/" + repo)
	if err != nil {
		h.t.Fatal(err)
	}
	var tags []string
	tl, err := h.reg.Client().TagList(context.Background(), r)
	switch {
	case errors.Is(err, errs.ErrNotFound):
	case err != nil:
		h.t.Fatalf("listing the tags of %s: %v", repo, err)
	default:
		all, _ := tl.GetTags()
		for _, tag := range all {
			if !strings.HasPrefix(tag, "sha256-") {
				tags = append(tags, tag)
			}
		}
	}
	for _, tag := range tags {
		layers := h.readIndex(repo, tag)
		var got []string
		for p := range layers {
			got = append(got, p)
		}
		slices.Sort(got)
		if !slices.Equal(got, platforms) {
			h.t.Errorf("%s:%s is visible with platforms %v, want all of %v", repo, tag, got, platforms)
		}
	}
	return tags
}

func TestIntermittentRegistryErrorsAreRetried(t *testing.T) {
	log := &writeLog{
		// Spread out, as a flaky load balancer would: regclient tolerates a
		// few failures per host before it stops retrying.
		failBlobPut:     []int{1, 9, 20},
		failManifestPut: []int{2, 12},
	}
	h := newHarness(t, testregistry.WithMiddleware(log.middleware))
	addWidgets(h.up)
	cfg := h.config(threeVersions)
	start := time.Now()
	_, res := h.syncWith(cfg, fastRetries(5))
	if err := res.Err(); err != nil {
		t.Fatalf("a registry failing %d requests now and then failed the sync: %v", log.failed, err)
	}
	t.Logf("sync with %d injected 500s took %s", log.failed, time.Since(start))
	if log.failed != 5 {
		t.Fatalf("%d failures injected, want 5: the test did not exercise what it says", log.failed)
	}
	tags := h.assertOnlyCompleteVersions("opentofu-providers/acme/widget", widgetPlatforms)
	assertLines(t, tags, "1.0.0", "1.1.0", "1.2.0")

	// The same content, digest for digest, as a registry that never failed.
	clean := newHarness(t)
	clean.up = h.up
	clean.mustSync(clean.config(threeVersions))
	for _, v := range tags {
		d1 := digestOf(t, h.reg.Client(), h.reg.Host+"/opentofu-providers/acme/widget:"+v)
		d2 := digestOf(t, clean.reg.Client(), clean.reg.Host+"/opentofu-providers/acme/widget:"+v)
		if d1 != d2 {
			t.Errorf("%s: %s after failures, %s without", v, d1, d2)
		}
	}
}

func TestRegistryStoppedMidSync(t *testing.T) {
	tests := []struct {
		name     string
		stopWhen func(stored, tagPuts int, isTag bool) bool
	}{
		{"inside the first version", func(stored, _ int, _ bool) bool { return stored >= 4 }},
		{"after a version was tagged", func(_, tagPuts int, isTag bool) bool { return isTag && tagPuts == 2 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := &writeLog{stopWhen: tt.stopWhen}
			h := newHarness(t, testregistry.WithMiddleware(log.middleware))
			log.stop = h.reg.Stop
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
			if !errors.Is(err, sync.ErrTarget) {
				t.Errorf("the failure does not say the target failed: %v", err)
			}
			failed, done := res.Count(sync.ItemFailed), res.Count(sync.ItemDone)
			if failed == 0 || failed+done != 3 {
				t.Fatalf("want every version accounted for, some failed: %+v", res.Items)
			}
			for _, it := range res.Items {
				if it.State == sync.ItemFailed && (!strings.Contains(it.Error, "acme/widget "+it.Version) || !strings.Contains(it.Error, h.reg.Host)) {
					t.Errorf("the failure of %s does not name the version and the registry: %s", it.Version, it.Error)
				}
			}
			firstStored := log.storedDigests()
			t.Logf("stopped after %d blobs; the run failed %d of 3 versions in %s", len(firstStored), failed, took)

			log.reset()
			h.reg.Restart()
			h.reg.ResetCounts()
			// A tag whose answer the stop swallowed may be there although
			// its item failed; one reported done must be.
			tags := h.assertOnlyCompleteVersions(repo, widgetPlatforms)
			for _, it := range res.Items {
				if it.State == sync.ItemDone && !slices.Contains(tags, it.Tag) {
					t.Errorf("%s reported done but not tagged: %v", it.Version, tags)
				}
			}

			start = time.Now()
			_, res = h.syncWith(cfg, fastRetries(3))
			if err := res.Err(); err != nil {
				t.Fatalf("rerun after the registry came back: %v", err)
			}
			assertLines(t, h.assertOnlyCompleteVersions(repo, widgetPlatforms), "1.0.0", "1.1.0", "1.2.0")
			again := log.storedDigests()
			for _, d := range again {
				if slices.Contains(firstStored, d) {
					t.Errorf("blob %s was uploaded again, though the registry stored it before it stopped", d)
				}
			}
			pushes := h.reg.Counts().Pushes()
			if pushes == 0 {
				t.Error("the rerun wrote nothing: the first run cannot have stopped mid-sync")
			}
			t.Logf("the rerun uploaded %d blobs (none of the %d already stored), %d writes in all, in %s", len(again), len(firstStored), pushes, time.Since(start))
		})
	}
}

func TestUpstreamFailingOnePlatformHidesOnlyThatVersion(t *testing.T) {
	log := &writeLog{}
	h := newHarness(t, testregistry.WithMiddleware(log.middleware))
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
	if res.Count(sync.ItemDone) != 2 || res.Count(sync.ItemFailed) != 1 {
		t.Fatalf("want 1.0.0 and 1.2.0 done and 1.1.0 failed: %+v", res.Items)
	}
	if err := res.Err(); !strings.Contains(err.Error(), "1.1.0 windows_amd64") || !strings.Contains(err.Error(), broken) {
		t.Errorf("the failure does not name the platform and the URL: %v", err)
	}
	assertLines(t, h.assertOnlyCompleteVersions(repo, widgetPlatforms), "1.0.0", "1.2.0")
	firstStored := log.storedDigests()

	// The link recovers: the rerun fetches only the missing package.
	h.up.ResetCounts()
	h.up.ClearFaults()
	log.reset()
	_, res = h.syncWith(cfg)
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	assertLines(t, h.assertOnlyCompleteVersions(repo, widgetPlatforms), "1.0.0", "1.1.0", "1.2.0")
	for _, d := range log.storedDigests() {
		if slices.Contains(firstStored, d) {
			t.Errorf("blob %s uploaded again", d)
		}
	}
	if c := h.up.Counts(); c.Zip != 1 {
		t.Errorf("the rerun downloaded %d zips, want only 1.1.0's windows one", c.Zip)
	}
}
