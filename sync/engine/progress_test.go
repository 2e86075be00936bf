package engine_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	gosync "sync"
	"testing"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testupstream"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/engine"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/target"
)

// TestProgressEvents: what a user interface receives. The plan's total
// comes first, per item; every package download announces itself with its size, its
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
	var events []item.Event
	record := func(ev item.Event) {
		mu.Lock()
		defer mu.Unlock()
		if ev.Package != nil {
			p := *ev.Package // the engine may reuse the value
			ev.Package = &p
		}
		events = append(events, ev)
	}
	up, tg := h.clients(cfg)
	eng := engine.New(up, tg, tg, engine.WithSpoolDir(t.TempDir()), engine.WithProgress(record))
	plan := eng.Plan(context.Background(), cfg, tg.String())
	res := eng.Execute(context.Background(), plan)
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	if len(events) == 0 || events[0].Total == nil {
		t.Fatalf("the first event is not the plan's total: %+v", events[:1])
	}
	if tot := events[0].Total; tot.Packages != 9 || tot.Bytes != 0 || len(tot.Items) != 3 {
		t.Errorf("the plan's total is %+v, want 9 packages in 3 items, bytes unknown", tot)
	} else {
		for i, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
			if want := (item.Planned{Address: "registry.opentofu.org/acme/widget", Version: v, Packages: 3}); tot.Items[i] != want {
				t.Errorf("planned item %d is %+v, want %+v", i, tot.Items[i], want)
			}
		}
	}
	for _, ev := range events[1:] {
		if ev.Total != nil {
			t.Errorf("a second total: %+v", ev.Total)
		}
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

// TestProgressUploadRetried: the registry fails the first zip upload
// after reading all of it; regclient sends the package again from the
// spool file. The bytes of the failed attempt come back negative, so the
// package's uploaded bytes still add up to its size.
func TestProgressUploadRetried(t *testing.T) {
	var mu gosync.Mutex
	failed := 0
	mw := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/") && r.ContentLength > 1000 {
				mu.Lock()
				fail := failed == 0
				if fail {
					failed++
				}
				mu.Unlock()
				if fail {
					_, _ = io.Copy(io.Discard, r.Body)
					http.Error(w, "try again", http.StatusInternalServerError)
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
	h := newHarness(t, testregistry.WithMiddleware(mw))
	h.up.AddProvider("acme", "widget", "1.0.0", "linux_amd64")
	cfg := h.config("platforms: [linux_amd64]\nproviders:\n  - source: acme/widget\n    versions: \"1.0.0\"\n")
	up, _ := h.clients(cfg)
	tg, err := target.Open(cfg.Target, fastRetries(5))
	if err != nil {
		t.Fatal(err)
	}
	var uploaded, rewound int64
	record := func(ev item.Event) {
		mu.Lock()
		defer mu.Unlock()
		uploaded += ev.Uploaded
		if ev.Uploaded < 0 {
			rewound -= ev.Uploaded
		}
	}
	eng := engine.New(up, tg, tg, engine.WithSpoolDir(t.TempDir()), engine.WithProgress(record))
	res := eng.Execute(context.Background(), eng.Plan(context.Background(), cfg, tg.String()))
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	want := int64(len(h.up.Zip("acme", "widget", "1.0.0", "linux_amd64")))
	mu.Lock()
	defer mu.Unlock()
	if failed != 1 {
		t.Fatalf("the registry failed %d uploads, want 1", failed)
	}
	if rewound == 0 || uploaded != want {
		t.Errorf("uploaded %d bytes in all (%d taken back), the zip is %d", uploaded, rewound, want)
	}
}
