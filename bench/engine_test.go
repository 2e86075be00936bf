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
// size it; BENCH_CONCURRENCY sets --concurrency (default 4).
func BenchmarkFirstSync(b *testing.B) {
	s := loadSettings(b)
	root := repoRoot(b)
	bin := filepath.Join(root, ".cache", "bin", "registry")
	if _, err := os.Stat(bin); err != nil {
		b.Skip("no .cache/bin/registry: run scripts/build-test-tools.sh bench first")
	}
	concurrency := envInt(b, "BENCH_CONCURRENCY", 4)
	dir := b.TempDir()
	reg := newRegistry(b, bin, filepath.Join(dir, "registry"))
	ps := providerSet{providers: s.w1Providers, versions: s.w1Versions, platforms: s.w1Platforms}
	up := testupstream.New(b, testupstream.WithPackageSize(s.w1Size))
	ps.publish(up)
	planFile := filepath.Join(dir, "mirror.yaml")
	writePlan(b, planFile, up, ps, reg.Host)
	cfg, err := config.Load(planFile)
	if err != nil {
		b.Fatal(err)
	}
	spool := filepath.Join(dir, "spool")
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
