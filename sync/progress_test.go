package sync_test

import (
	"context"
	gosync "sync"
	"testing"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testupstream"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync"
)

// TestProgressEvents: what a user interface receives. The plan comes
// first; every package download announces itself with its size, its
// bytes name it and add up to that size even when a dropped connection
// made the fetcher start again (the discarded bytes come back negative),
// so do its uploaded bytes, and it ends with Done.
func TestProgressEvents(t *testing.T) {
	h := newHarness(t)
	addWidgets(h.up)
	cfg := h.config(threeVersions)
	dropped := "/files/acme/widget/1.1.0/terraform-provider-widget_1.1.0_linux_amd64.zip"
	h.up.MisbehaveNext(dropped, 1, testupstream.DropConnection(1000))

	var mu gosync.Mutex
	var events []sync.Event
	record := func(ev sync.Event) {
		mu.Lock()
		defer mu.Unlock()
		if ev.Package != nil {
			p := *ev.Package // the engine may reuse the value
			ev.Package = &p
		}
		events = append(events, ev)
	}
	up, tg := h.clients(cfg)
	plan := sync.NewPlanner(up, tg).Plan(context.Background(), cfg, tg.String())
	res := sync.NewExecutor(up, tg, sync.WithSpoolDir(t.TempDir()), sync.WithProgress(record)).Execute(context.Background(), plan)
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	if len(events) == 0 || events[0].Plan != plan {
		t.Fatalf("the first event is not the plan: %+v", events[:1])
	}
	type pkgState struct {
		size, got  int64
		uploaded   int64
		started    int
		done       int
		negative   bool
		doneBefore bool
	}
	pkgs := map[string]*pkgState{}
	var total int64
	for _, ev := range events[1:] {
		total += ev.Bytes
		p := ev.Package
		if p == nil {
			continue
		}
		key := p.Address + " " + p.Version + " " + p.Name
		st := pkgs[key]
		if st == nil {
			st = &pkgState{}
			pkgs[key] = st
		}
		switch {
		case p.Done:
			st.done++
		case ev.Uploaded != 0:
			st.uploaded += ev.Uploaded
		case ev.Bytes == 0:
			st.started++
			st.size = p.Size
		default:
			if st.started == 0 || st.done > 0 {
				st.doneBefore = true
			}
			st.got += ev.Bytes
			st.negative = st.negative || ev.Bytes < 0
		}
	}
	if len(pkgs) != 9 {
		t.Fatalf("%d packages reported, want 9", len(pkgs))
	}
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		for _, pl := range widgetPlatforms {
			key := "registry.opentofu.org/acme/widget " + v + " " + pl
			st := pkgs[key]
			want := int64(len(h.up.Zip("acme", "widget", v, pl)))
			switch {
			case st == nil:
				t.Errorf("%s: no events", key)
			case st.started != 1 || st.done != 1 || st.doneBefore:
				t.Errorf("%s: started %d, done %d, bytes outside the download %v", key, st.started, st.done, st.doneBefore)
			case st.size != want || st.got != want || st.uploaded != want:
				t.Errorf("%s: announced %d bytes, reported %d downloaded and %d uploaded, the zip is %d", key, st.size, st.got, st.uploaded, want)
			}
		}
	}
	if st := pkgs["registry.opentofu.org/acme/widget 1.1.0 linux_amd64"]; st == nil || !st.negative {
		t.Errorf("the restarted download reported no discarded bytes")
	}
	if down, _ := res.Bytes(); total != down {
		t.Errorf("bytes reported %d in all, the result says %d downloaded", total, down)
	}
}
