package bundle_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/bundle"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/target"
)

// inFlight is a registry middleware measuring how many blob uploads (the
// PUTs carrying the content) run at once; each is held a little so that
// uploads started together overlap.
type inFlight struct {
	mu       sync.Mutex
	now, max int
}

func (f *inFlight) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut || !strings.Contains(r.URL.Path, "/blobs/uploads/") {
			next.ServeHTTP(w, r)
			return
		}
		f.mu.Lock()
		f.now++
		f.max = max(f.max, f.now)
		f.mu.Unlock()
		time.Sleep(30 * time.Millisecond)
		next.ServeHTTP(w, r)
		f.mu.Lock()
		f.now--
		f.mu.Unlock()
	})
}

// regclient sends a registry at most 3 requests at once unless told
// otherwise, whatever the import's --concurrency: the CLI opens the
// import's target with room for every upload slot.
func TestImportUploadsAsManyAsItsConcurrency(t *testing.T) {
	w := newWorld(t)
	_, data := w.export(w.config(nil, defaultTemplate, planAB), nil)
	for _, c := range []struct {
		name      string
		opts      []target.Option
		atLeast   int
		atMost    int
		uploadsAt int
	}{
		{"regclient's default", nil, 2, 3, 6},
		// Six upload slots (a blob two repositories share takes one slot
		// for both), eight requests.
		{"WithRequestConcurrency(8)", []target.Option{target.WithRequestConcurrency(8)}, 5, 8, 6},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &inFlight{}
			reg := testregistry.New(t, testregistry.WithMiddleware(f.middleware))
			cfg := w.config(reg, defaultTemplate, planAB)
			tg, err := target.Open(cfg.Target, c.opts...)
			if err != nil {
				t.Fatal(err)
			}
			res, err := bundle.Import(context.Background(), cfg, tg, bundleFile(t, data), signed(t, data, bundle.ImportOptions{SpoolDir: t.TempDir(), Concurrency: c.uploadsAt}))
			if err != nil || res.Count(item.Done) != 3 {
				t.Fatalf("import: %v %+v", err, res)
			}
			if f.max < c.atLeast || f.max > c.atMost {
				t.Fatalf("at most %d uploads ran at once, want %d to %d", f.max, c.atLeast, c.atMost)
			}
		})
	}
}
