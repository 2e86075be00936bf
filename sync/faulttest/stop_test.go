package faulttest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/faulttest"
)

// TestCLIRegistryStoppedMidSync: the registry dies as the tool tags the
// last version. A cron job learns it from the exit code and the summary;
// OpenTofu sees only complete versions; the next run does the rest.
func TestCLIRegistryStoppedMidSync(t *testing.T) {
	s := newScene(t)
	faults := &faulttest.RegistryFaults{}
	reg := testregistry.New(t, testregistry.WithMiddleware(faults.Middleware))
	// Six versions: the sixth tag PUT to arrive is the run's last write.
	// The other five tag PUTs have arrived by then; let them be answered
	// before the registry dies, or which versions fail is a race.
	faults.StopWhen(func(p faulttest.Progress) bool { return p.IsTag && p.TagPuts == 6 }, func() {
		for deadline := time.Now().Add(10 * time.Second); len(faults.Tagged()) < 5 && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
		reg.Stop()
	})
	args := []string{"sync", "-c", s.plan(reg), "--no-progress"}

	r := s.mirror(faults, nil, args...)
	if r.code != 1 || r.killed {
		t.Fatalf("want exit 1 when the registry went away:\n%s", r)
	}
	for _, want := range []string{"Sync: 5 copied, 0 unchanged, 1 failed, 0 conflicts"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the summary lacks %q:\n%s", want, r)
		}
	}
	if !strings.Contains(r.stderr, reg.Host) || !strings.Contains(r.stderr, "1 of 6 items not in place") {
		t.Errorf("stderr does not say what failed where:\n%s", r.stderr)
	}

	faults.Reset()
	reg.Restart()
	if tags := state(t, reg); len(tags) != 11 {
		t.Errorf("want 5 version tags and 6 referrer tags after the failed run, got %v", tags)
	}
	r = s.mustMirror(faults, args...)
	if !strings.Contains(r.stdout, "Sync: 1 copied, 5 unchanged, 0 failed") {
		t.Errorf("the rerun did not finish just the missing version:\n%s", r)
	}
	if len(faults.Stored()) != 0 {
		t.Errorf("the rerun uploaded blobs %v: everything but a tag was there", faults.Stored())
	}
	if tags := state(t, reg); len(tags) != 12 {
		t.Errorf("want 6 version tags and 6 referrer tags, got %v", tags)
	}
}
