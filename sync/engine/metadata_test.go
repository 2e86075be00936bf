package engine_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testupstream"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/engine"
)

// gate holds each request it answers until want of them are in flight at
// once; one that waited out the deadline is counted as late.
type gate struct {
	want int

	mu       sync.Mutex
	inFlight int
	open     chan struct{}
	late     atomic.Int32
}

func newGate(want int) *gate { return &gate{want: want, open: make(chan struct{})} }

func (g *gate) misbehavior() testupstream.Misbehavior {
	return func(w http.ResponseWriter, r *http.Request, honest http.Handler) {
		g.mu.Lock()
		g.inFlight++
		if g.inFlight == g.want {
			close(g.open)
		}
		g.mu.Unlock()
		select {
		case <-g.open:
		case <-time.After(3 * time.Second):
			g.late.Add(1)
		case <-r.Context().Done():
		}
		honest.ServeHTTP(w, r)
	}
}

// Metadata calls cost a round trip each and carry few bytes: they are not
// bound by the transfer slots. With one transfer at a time, eight
// providers are still planned at once, and a version's four download
// answers asked for at once.
func TestMetadataCallsHaveTheirOwnConcurrency(t *testing.T) {
	h := newHarness(t)
	var body strings.Builder
	body.WriteString("platforms: [linux_amd64, darwin_arm64, windows_amd64, linux_arm64]\nproviders:\n")
	const n = 8
	versions := newGate(n)
	for i := range n {
		typ := fmt.Sprintf("p%d", i)
		h.up.AddProvider("acme", typ, "1.0.0", "linux_amd64", "darwin_arm64", "windows_amd64", "linux_arm64")
		fmt.Fprintf(&body, "  - source: acme/%s\n    versions: \"1.0.0\"\n", typ)
		h.up.MisbehaveNext("/v1/providers/acme/"+typ+"/versions", 1, versions.misbehavior())
	}
	downloads := newGate(4)
	h.up.MisbehaveNext("/v1/providers/acme/p0/1.0.0/download/", 4, downloads.misbehavior())
	cfg := h.config(body.String())
	up, tg := h.clients(cfg)
	eng := engine.New(up, tg, tg, engine.WithSpoolDir(t.TempDir()), engine.WithConcurrency(1), engine.WithMetadataConcurrency(n))
	plan := eng.Plan(context.Background(), cfg, tg.String())
	if err := plan.Errors(); err != nil {
		t.Fatal(err)
	}
	if late := versions.late.Load(); late > 0 {
		t.Errorf("%d of %d versions calls waited for others to end: planning is bound by the transfer concurrency", late, n)
	}
	if err := eng.Execute(context.Background(), plan).Err(); err != nil {
		t.Fatal(err)
	}
	if late := downloads.late.Load(); late > 0 {
		t.Errorf("%d of 4 download answers waited for a transfer slot", late)
	}
}
