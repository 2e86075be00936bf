package bundle_test

import (
	"context"
	"testing"
	"time"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/bundle"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/target"
)

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
			f := &testregistry.UploadsInFlight{Hold: 30 * time.Millisecond}
			reg := testregistry.New(t, testregistry.WithMiddleware(f.Middleware))
			cfg := w.config(reg, defaultTemplate, planAB)
			tg, err := target.Open(cfg.Target, c.opts...)
			if err != nil {
				t.Fatal(err)
			}
			res, err := bundle.Import(context.Background(), cfg, tg, bundleFile(t, data), signed(t, data, bundle.ImportOptions{SpoolDir: t.TempDir(), Concurrency: c.uploadsAt}))
			if err != nil || res.Count(item.Done) != 3 {
				t.Fatalf("import: %v %+v", err, res)
			}
			if got := f.Max(); got < c.atLeast || got > c.atMost {
				t.Fatalf("at most %d uploads ran at once, want %d to %d", got, c.atLeast, c.atMost)
			}
		})
	}
}
