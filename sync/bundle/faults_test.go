package bundle_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/target"

	"github.com/regclient/regclient"
	"github.com/regclient/regclient/scheme/reg"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/bundle"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/faulttest"
)

// These tests import a bundle into a registry that fails on purpose: the
// import may fail, but OpenTofu never sees a version without all its
// platforms, and importing again finishes without uploading twice.

// importWith imports data with regclient retrying quickly (limit retries).
func importWith(t *testing.T, cfg *config.Config, data []byte, limit int) (*item.Run, error) {
	t.Helper()
	tg, err := target.Open(cfg.Target, target.WithRegClientOptions(regclient.WithRegOpts(
		reg.WithDelay(5*time.Millisecond, 50*time.Millisecond), reg.WithRetryLimit(limit))))
	if err != nil {
		t.Fatal(err)
	}
	return bundle.Import(context.Background(), cfg, tg, bytes.NewReader(data), signed(t, data, bundle.ImportOptions{SpoolDir: t.TempDir(), Concurrency: 2}))
}

// visible checks every version tag of the bundle's repositories is complete
// (widget: both platforms; gadget: linux only) and returns all tags with
// their digests.
func visible(t *testing.T, r *testregistry.Registry) []string {
	t.Helper()
	ctx := context.Background()
	for repo, platforms := range map[string][]string{
		"opentofu-providers/acme/widget": {"darwin_arm64", "linux_amd64"},
		"opentofu-providers/acme/gadget": {"linux_amd64"},
	} {
		if _, err := faulttest.CompleteProviderVersions(ctx, r.Client(), r.Host, repo, platforms); err != nil {
			t.Error(err)
		}
	}
	state, err := faulttest.TagDigests(ctx, r.Client(), r.Host, repos...)
	if err != nil {
		t.Fatal(err)
	}
	return state
}

// exportAB exports planAB and imports it into a registry that never
// fails, returning the bundle and the state every import must end in.
func exportAB(t *testing.T) (*world, []byte, []string) {
	t.Helper()
	w := newWorld(t)
	_, data := w.export(w.config(nil, defaultTemplate, planAB), nil)
	clean := testregistry.New(t)
	if _, err := importWith(t, w.config(clean, defaultTemplate, planAB), data, 5); err != nil {
		t.Fatal(err)
	}
	return w, data, visible(t, clean)
}

func TestImportIntoFlakyRegistry(t *testing.T) {
	w, data, want := exportAB(t)

	faults := &faulttest.RegistryFaults{}
	faults.FailBlobPut(1, 8)
	faults.FailManifestPut(1, 9)
	flaky := testregistry.New(t, testregistry.WithMiddleware(faults.Middleware))
	res, err := importWith(t, w.config(flaky, defaultTemplate, planAB), data, 5)
	if err != nil || res.Err() != nil {
		t.Fatalf("import into a registry failing now and then: %v %v", err, res.Err())
	}
	if faults.Failed() != 4 {
		t.Fatalf("%d failures injected, want 4: the test did not exercise what it says", faults.Failed())
	}
	if got := visible(t, flaky); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("after retried failures:\n%v\nwithout failures:\n%v", got, want)
	}
}

func TestRegistryStoppedMidImport(t *testing.T) {
	w, data, want := exportAB(t)

	for _, tc := range []struct {
		name string
		when func(faulttest.Progress) bool
	}{
		// While blobs stream in: nothing may be tagged.
		{"while streaming blobs", func(p faulttest.Progress) bool { return p.Stored >= 3 }},
		// While publishing the tags, after all content is in.
		{"between two tags", func(p faulttest.Progress) bool { return p.IsTag && p.TagPuts == 2 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			faults := &faulttest.RegistryFaults{}
			r := testregistry.New(t, testregistry.WithMiddleware(faults.Middleware))
			faults.StopWhen(tc.when, r.Stop)
			cfg := w.config(r, defaultTemplate, planAB)
			start := time.Now()
			res, err := importWith(t, cfg, data, 3)
			if err == nil {
				err = res.Err()
			}
			if err == nil {
				t.Fatal("the import succeeded although the registry stopped")
			}
			if !strings.Contains(err.Error(), r.Host) {
				t.Errorf("the failure does not name the registry: %v", err)
			}
			done := res.Count(item.Done)
			before := faults.Stored()
			t.Logf("stopped after %d blobs; %d of %d artifacts tagged; failed in %s", len(before), done, len(res.Items), time.Since(start))

			faults.Reset()
			r.Restart()
			partial := visible(t, r)
			for _, it := range res.Items {
				if it.State == item.Done && !containsPrefix(partial, it.Repository+":"+it.Tag+" ") {
					t.Errorf("%s %s reported imported but not tagged", it.Address, it.Version)
				}
			}
			if tc.name == "while streaming blobs" && len(partial) != 0 {
				t.Errorf("tags visible although the bundle was never read to its end: %v", partial)
			}

			r.ResetCounts()
			res, err = importWith(t, cfg, data, 3)
			if err != nil || res.Err() != nil {
				t.Fatalf("import again: %v %v", err, res.Err())
			}
			if got := visible(t, r); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("after a stop and a second import:\n%v\nuninterrupted:\n%v", got, want)
			}
			for _, d := range faults.StoredAgain(before) {
				t.Errorf("blob %s uploaded again", d)
			}
			if r.Counts().Pushes() == 0 {
				t.Error("the second import wrote nothing: the stop interrupted nothing")
			}
		})
	}
}

func containsPrefix(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}
