package bench

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/engine"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/target"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testupstream"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/upstream"
)

// BenchmarkFirstSync is workload 1 through the sync engine in-process, as
// the CLI wires it, so the engine can be profiled:
//
//	go test -run '^$' -bench FirstSync -benchtime 3x -cpuprofile cpu.out ./bench/
//	go tool pprof -top -cum cpu.out
//
// The test upstream runs in the same process (its goroutines are under
// internal/testupstream and net/http's server); the registry is the
// separate process, emptied before each iteration. The BENCH_W1_* settings
// size it; BENCH_CONCURRENCY sets --concurrency (default: the CLI's).
func BenchmarkFirstSync(b *testing.B) {
	w := newWorkload1(b)
	s, ps, up, reg, concurrency, planFile := w.s, w.ps, w.up, w.reg, w.concurrency, w.plan
	cfg, err := config.Load(planFile)
	if err != nil {
		b.Fatal(err)
	}
	spool := filepath.Join(w.dir, "spool")
	if err := os.MkdirAll(spool, 0o755); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(ps.packages()) * (s.w1Size + 200))
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		reg.reset(b)
		b.StartTimer()
		upc, err := upstream.New(
			upstream.WithCAFile(up.CAFile),
			upstream.WithHostServices(map[string]map[string]string{"registry.opentofu.org": up.Services()}),
		)
		if err != nil {
			b.Fatal(err)
		}
		tg, err := target.Open(cfg.Target)
		if err != nil {
			b.Fatal(err)
		}
		plan := engine.New(upc, tg, nil, engine.WithConcurrency(concurrency)).Plan(ctx, cfg, tg.String())
		res := engine.New(upc, tg, tg, engine.WithConcurrency(concurrency), engine.WithSpoolDir(spool)).Execute(ctx, plan)
		if err := res.Err(); err != nil {
			b.Fatal(err)
		}
		if n := res.Count(item.Done); n != ps.providers*ps.versions {
			b.Fatalf("%d versions copied, want %d", n, ps.providers*ps.versions)
		}
	}
}

// workload1 is what the in-process benchmarks share: workload 1's
// catalogue on a test upstream, a registry process, and a plan file for
// them.
type workload1 struct {
	s           settings
	root, dir   string
	ps          providerSet
	up          *testupstream.Server
	reg         *registryProc
	concurrency int // BENCH_CONCURRENCY, else the CLI's default
	plan        string
}

func newWorkload1(b *testing.B) *workload1 {
	b.Helper()
	w := &workload1{s: loadSettings(b), root: repoRoot(b), dir: b.TempDir()}
	bin := filepath.Join(w.root, ".cache", "bin", "registry")
	if _, err := os.Stat(bin); err != nil {
		b.Skip("no .cache/bin/registry: run scripts/build-test-tools.sh bench first")
	}
	w.concurrency = envInt(b, "BENCH_CONCURRENCY", engine.DefaultConcurrency)
	w.reg = newRegistry(b, bin, filepath.Join(w.dir, "registry"))
	w.ps = providerSet{providers: w.s.w1Providers, versions: w.s.w1Versions, platforms: w.s.w1Platforms}
	w.up = testupstream.New(b, testupstream.WithPackageSize(w.s.w1Size))
	w.ps.publish(w.up)
	w.plan = filepath.Join(w.dir, "mirror.yaml")
	writePlan(b, w.plan, w.up, w.ps, w.reg.Host)
	return w
}
