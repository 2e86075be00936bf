package bench

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/bundle"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/provenance"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/target"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/upstream"
)

// BenchmarkImport is workload 3 through bundle.Import in-process, wired as
// the CLI wires `import -c plan bundle.tar`, so the import can be profiled:
//
//	go test -run '^$' -bench Import -benchtime 3x -cpuprofile cpu.out ./bench/
//	go tool pprof -top -cum cpu.out
//
// The bundle is exported once by the CLI (built from the work tree) from
// the test upstream; each iteration imports it from the file into the
// registry process, emptied first. The BENCH_W1_* settings size it;
// BENCH_CONCURRENCY sets --concurrency (default 4).
func BenchmarkImport(b *testing.B) {
	w := newWorkload1(b)
	dir, reg, ps, planFile := w.dir, w.reg, w.ps, w.plan
	concurrency := envInt(b, "BENCH_CONCURRENCY", 4) // import's --concurrency default
	cli := filepath.Join(dir, "tofu-oci-mirror")
	goBuild(b, w.root, cli, "./cmd/tofu-oci-mirror")
	bundlePath := filepath.Join(dir, "bundle.tar")
	expectExit(b, 0, cli, "export", "-c", planFile, "--output", bundlePath, "--sign-key", bundleKey(b).PrivateFile, "--no-progress", "--log-level", "warn")
	cfg, err := config.Load(planFile)
	if err != nil {
		b.Fatal(err)
	}
	policy, err := provenance.FromConfig(cfg.Trust, upstream.SignaturePolicy{})
	if err != nil {
		b.Fatal(err)
	}
	keys, err := bundle.LoadTrustedKeys(cfg.Trust.BundleKeys)
	if err != nil {
		b.Fatal(err)
	}
	sig, err := os.ReadFile(bundle.SignaturePath(bundlePath))
	if err != nil {
		b.Fatal(err)
	}
	spool := filepath.Join(dir, "spool")
	if err := os.MkdirAll(spool, 0o755); err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(bundlePath)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(fi.Size())
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		reg.reset(b)
		b.StartTimer()
		tg, err := target.Open(cfg.Target)
		if err != nil {
			b.Fatal(err)
		}
		r, err := bundle.OpenBundle(bundlePath)
		if err != nil {
			b.Fatal(err)
		}
		res, err := bundle.Import(ctx, cfg, tg, r, bundle.ImportOptions{SpoolDir: spool, Concurrency: concurrency, Policy: policy, BundleKeys: keys, Signature: sig})
		_ = r.Close()
		if err == nil {
			err = res.Err()
		}
		if err != nil {
			b.Fatal(err)
		}
		if n := res.Count(item.Done); n != ps.providers*ps.versions {
			b.Fatalf("%d versions imported, want %d", n, ps.providers*ps.versions)
		}
	}
}
