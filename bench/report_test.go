package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/bench/wan"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testupstream"
)

// report is everything RESULTS.md says; a nil workload was not run.
type report struct {
	settings     settings
	machine      machine
	started      time.Time
	elapsed      time.Duration
	firstSync    *firstSyncResult
	noop         *noopResult
	importBundle *importResult
	scaling      *scalingResult
	memory       *memoryResult
	wan          *wanResult
	// concurrency is the CLI's default --concurrency, which workload 1's
	// floor uses too.
	concurrency int
}

type firstSyncRun struct{ ours, oras, floor measurement }

type firstSyncResult struct {
	set         providerSet
	size, bytes int64
	orasScript  string
	runs        []firstSyncRun
}

type noopResult struct {
	set         providerSet
	populate    time.Duration
	runs        []measurement
	countedWall time.Duration
	upstream    testupstream.UpstreamCounts
	registry    registryCounts
}

type importRun struct{ ours, oras, regctl, floor measurement }

type importResult struct {
	set                      providerSet
	bytes, bundleSize        int64
	export                   measurement
	orasScript, regctlScript string
	runs                     []importRun
	byConcurrency            []importAt // one run each, a diagnostic
}

type importAt struct {
	concurrency string
	m           measurement
}

type scalingLevel struct {
	concurrency int
	ours, floor []time.Duration
	oursRSS     int64
}

type scalingResult struct {
	set    providerSet
	bytes  int64
	levels []scalingLevel
}

type memoryResult struct {
	size              int64
	sync, export, imp measurement
}

const memoryTarget = 100 << 20

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func mbps(bytes int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(bytes) / 1e6 / d.Seconds()
}

func mib(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func yesNo(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**missed**"
}

func peakRSS(ms []measurement) int64 {
	var n int64
	for _, m := range ms {
		n = max(n, m.MaxRSS)
	}
	return n
}

func walls(ms []measurement) []time.Duration {
	var ds []time.Duration
	for _, m := range ms {
		ds = append(ds, m.Wall)
	}
	return ds
}

// ratio is the median over the runs of num's wall time divided by den's,
// each ratio taken within one run.
func ratio(num, den []measurement) float64 {
	var rs []float64
	for i := range min(len(num), len(den)) {
		rs = append(rs, num[i].Wall.Seconds()/den[i].Wall.Seconds())
	}
	return median(rs)
}

// columns splits the runs by tool.
func (f *firstSyncResult) columns() (ours, oras, floor []measurement) {
	for _, r := range f.runs {
		ours, oras, floor = append(ours, r.ours), append(oras, r.oras), append(floor, r.floor)
	}
	return ours, oras, floor
}

func (r *importResult) columns() (ours, oras, regctl []measurement) {
	for _, x := range r.runs {
		ours, oras, regctl = append(ours, x.ours), append(oras, x.oras), append(regctl, x.regctl)
	}
	return ours, oras, regctl
}

// floor is the upload floor's column.
func (r *importResult) floor() []measurement {
	var out []measurement
	for _, x := range r.runs {
		out = append(out, x.floor)
	}
	return out
}

// importFloorTarget is issue 15's bound: the import within 1.10× of the
// upload floor.
const importFloorTarget = 1.10

// noopBound is issue 7's budget: one upstream versions call per provider,
// the tag-list pages, one manifest request per version.
func (n *noopResult) bound() int {
	return n.set.providers + n.registry.TagList + n.set.providers*n.set.versions
}

// noopSpent is what the budget counts: every upstream request and every
// registry request except the /v2/ version check.
func (n *noopResult) spent() int { return n.upstream.Total + n.registry.Total - n.registry.Ping }

func (n *noopResult) downloads() int {
	return n.upstream.Download + n.upstream.Zip + n.upstream.SHASums + n.upstream.Signature
}

func (n *noopResult) pushes() int { return n.registry.ManifestPut + n.registry.BlobUpload }

func (r *report) render() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	m := r.machine
	w("# Benchmark results\n\n")
	w("Written by `make bench` (bench/bench_test.go, TestBench) on %s at commit `%s`; the suite took %s.\n",
		r.started.UTC().Format("2006-01-02 15:04 UTC"), m.Commit, r.elapsed.Round(time.Second))
	w("Everything runs on 127.0.0.1: the test upstream (internal/testupstream, HTTPS, OpenPGP-signed SHA256SUMS),\n")
	w("the CNCF distribution registry v3.1.2 as a separate process with filesystem storage (%s), ORAS CLI v1.3.6 and\n", storageWhere())
	w("regctl v0.11.7 (all three built from the Go module proxy by `scripts/build-test-tools.sh bench`, pinned in\n")
	w("bench/tools/go.mod). Every measured run starts from an empty registry (process restarted, storage deleted).\n")
	w("Times are medians of %d runs; ratios are taken within each run, then the median of those.\n\n", r.settings.runs)

	w("## Machine\n\n| | |\n|---|---|\n")
	w("| CPUs (nproc) | %d |\n| CPU | %s |\n| memory | %s |\n| kernel | %s |\n| Go | %s |\n", m.CPUs, m.CPUModel, m.MemTotal, m.Kernel, m.GoVersion)
	w("| load average (1, 5, 15 min) at start | %s |\n| load average at end | %s |\n\n", m.LoadStart, m.LoadEnd)
	w("The machine is shared: the load average above says how quiet it was. The upstream server runs in the\n")
	w("benchmark's own process and the registry in another, so every tool shares the %d CPUs with both.\n\n", m.CPUs)

	r.renderSummary(w)
	if f := r.firstSync; f != nil {
		r.renderFirstSync(w, f)
	}
	if n := r.noop; n != nil {
		renderNoop(w, n)
	}
	if i := r.importBundle; i != nil {
		renderImport(w, i, r.machine.CPUs)
	}
	if mem := r.memory; mem != nil {
		renderMemory(w, mem)
	}
	if s := r.scaling; s != nil {
		renderScaling(w, s)
	}
	if x := r.wan; x != nil {
		renderWAN(w, x, r.settings.runs, r.machine.CPUs)
	}
	r.renderCommands(w)
	return b.String()
}

func (r *report) renderSummary(w func(string, ...any)) {
	w("## Summary\n\n| workload | result | target | |\n|---|---|---|---|\n")
	if f := r.firstSync; f != nil {
		ours, oras, floor := f.columns()
		ar, fr := ratio(oras, ours), ratio(ours, floor)
		o, a, fl := median(walls(ours)), median(walls(oras)), median(walls(floor))
		w("| 1. first sync, %s | tofu-oci-mirror %s (%.0f MB/s), ORAS procedure %s: **%.1f× faster** (the floor: %.1f×) | ≥ 3× faster than ORAS | %s |\n",
			mib(f.bytes), secs(o), mbps(f.bytes, o), secs(a), ar, ratio(oras, floor), yesNo(ar >= 3))
		w("| 1. first sync vs floor | floor %s (%.0f MB/s): tofu-oci-mirror takes **%.2f×** the floor | within 2× of the floor | %s |\n",
			secs(fl), mbps(f.bytes, fl), fr, yesNo(fr <= 2))
	}
	if n := r.noop; n != nil {
		d := median(walls(n.runs))
		w("| 2. nightly no-op, %d versions | **%s** wall; %d requests (budget %d), %d downloads, %d pushes | < 5 s, within budget, 0 downloads | %s |\n",
			n.set.providers*n.set.versions, secs(d), n.spent(), n.bound(), n.downloads(), n.pushes(),
			yesNo(d < 5*time.Second && n.spent() <= n.bound() && n.downloads() == 0 && n.pushes() == 0))
	}
	if i := r.importBundle; i != nil {
		ours, oras, regctl := i.columns()
		ar, gr := ratio(oras, ours), ratio(regctl, ours)
		w("| 3. import, %s | tofu-oci-mirror %s, oras cp %s (**%.2f×**), regctl image copy %s (**%.2f×**) | faster than both | %s |\n",
			mib(i.bytes), secs(median(walls(ours))), secs(median(walls(oras))), ar, secs(median(walls(regctl))), gr, yesNo(ar > 1 && gr > 1))
		fr := ratio(ours, i.floor())
		w("| 3. import vs upload floor | upload floor %s: tofu-oci-mirror takes **%.2f×** the floor | within %.2f× of the floor | %s |\n",
			secs(median(walls(i.floor()))), fr, importFloorTarget, yesNo(fr <= importFloorTarget))
	}
	if mem := r.memory; mem != nil {
		w("| 4. memory, one %s package | peak RSS: sync %s, export %s, import %s | < 100 MiB each | %s |\n",
			mib(mem.size), mib(mem.sync.MaxRSS), mib(mem.export.MaxRSS), mib(mem.imp.MaxRSS),
			yesNo(mem.sync.MaxRSS < memoryTarget && mem.export.MaxRSS < memoryTarget && mem.imp.MaxRSS < memoryTarget))
	}
	if s := r.scaling; s != nil {
		best, bestRate := 0, 0.0
		var parts []string
		for _, lv := range s.levels {
			rate := mbps(s.bytes, median(lv.ours))
			parts = append(parts, fmt.Sprintf("%d: %.0f", lv.concurrency, rate))
			if rate > bestRate {
				best, bestRate = lv.concurrency, rate
			}
		}
		w("| 5. scaling (MB/s by --concurrency) | %s; best at %d | choose the default from data | |\n", strings.Join(parts, ", "), best)
	}
	if x := r.wan; x != nil {
		renderWANSummary(w, x)
	}
	w("\n")
}

func (r *report) renderFirstSync(w func(string, ...any), f *firstSyncResult) {
	ps := f.set
	w("## 1. First sync\n\n")
	w("%d providers × %d versions × %d platforms = %d packages of %s (zips of %s in all), into an empty registry.\n\n",
		ps.providers, ps.versions, ps.platforms, ps.packages(), mib(f.size), mib(f.bytes))
	w("- **tofu-oci-mirror** `sync` (default `--concurrency %d`): per version, the download API call, `SHA256SUMS` and\n", r.concurrency)
	w("  its signature verified, each zip downloaded over HTTPS into a spool file while hashed, uploaded, manifests,\n")
	w("  index, provenance referrer, tag.\n")
	w("- **ORAS procedure** over the same zips already on disk, one command at a time as the docs show it: per version,\n")
	w("  `oras push` of each platform's zip into an OCI layout, `oras manifest index create`, `oras cp` to the registry.\n")
	w("- **floor** (bench/floor): the same bytes downloaded over loopback from the test upstream and streamed straight\n")
	w("  into blob uploads (POST, PATCH, PUT ?digest=) by %d parallel plain HTTP clients (as many as our transfers), hashed once, nothing verified;\n", r.concurrency)
	w("  then the same manifests, index and tag.\n\n")
	w("| run | tofu-oci-mirror | ORAS procedure | floor | ORAS ÷ ours | ours ÷ floor | ORAS ÷ floor |\n|---|---|---|---|---|---|---|\n")
	for i, x := range f.runs {
		w("| %d | %s | %s | %s | %.2f | %.2f | %.2f |\n", i+1, secs(x.ours.Wall), secs(x.oras.Wall), secs(x.floor.Wall),
			x.oras.Wall.Seconds()/x.ours.Wall.Seconds(), x.ours.Wall.Seconds()/x.floor.Wall.Seconds(), x.oras.Wall.Seconds()/x.floor.Wall.Seconds())
	}
	ours, oras, floor := f.columns()
	o, a, fl := median(walls(ours)), median(walls(oras)), median(walls(floor))
	w("| **median** | **%s** | **%s** | **%s** | **%.2f** | **%.2f** | **%.2f** |\n", secs(o), secs(a), secs(fl), ratio(oras, ours), ratio(ours, floor), ratio(oras, floor))
	w("| MB/s | %.0f | %.0f | %.0f | | | |\n\n", mbps(f.bytes, o), mbps(f.bytes, a), mbps(f.bytes, fl))
	w("ORAS ÷ floor is the most any tool could gain over the ORAS procedure here: the registry process and the\n")
	w("upstream share the same CPUs, and the registry's own work (hashing and writing every byte) is the same for all.\n\n")
	renderCPU(w, r.machine.CPUs, []string{"tofu-oci-mirror", "ORAS procedure", "floor"}, ours, oras, floor)
	w("Peak RSS: tofu-oci-mirror %s; the largest single `oras` process %s.\n\n", mib(peakRSS(ours)), mib(peakRSS(oras)))
}

// renderCPU tabulates where the CPU time went, median per column: the
// tool's processes, the registry process, the test upstream (serving from
// the benchmark's process; zero for tools that read local files).
func renderCPU(w func(string, ...any), cpus int, names []string, runs ...[]measurement) {
	w("CPU time (median over the runs) of each side; on %d CPUs, total ÷ %d is the least wall time the work allows:\n\n", cpus, cpus)
	w("| | tool process(es) | registry | test upstream | total | total ÷ %d | wall |\n|---|---|---|---|---|---|---|\n", cpus)
	for k, ms := range runs {
		var tool, reg, up, tot, wall []time.Duration
		for _, m := range ms {
			tool, reg, up = append(tool, m.CPU), append(reg, m.RegistryCPU), append(up, m.UpstreamCPU)
			tot, wall = append(tot, m.CPU+m.RegistryCPU+m.UpstreamCPU), append(wall, m.Wall)
		}
		t := median(tot)
		w("| %s | %s | %s | %s | %s | %s | %s |\n", names[k], secs(median(tool)), secs(median(reg)), secs(median(up)), secs(t), secs(t/time.Duration(max(cpus, 1))), secs(median(wall)))
	}
	w("\n")
}

func renderNoop(w func(string, ...any), n *noopResult) {
	ps := n.set
	w("## 2. Nightly no-op\n\n")
	w("A plan of %d providers × %d versions × %d platforms (%d versions, %d packages), all already mirrored\n",
		ps.providers, ps.versions, ps.platforms, ps.providers*ps.versions, ps.packages())
	w("(populated once by our own `sync --concurrency 16` with 4 KiB packages in %s), synced again with the defaults.\n\n", secs(n.populate))
	w("| run | wall |\n|---|---|\n")
	for i, m := range n.runs {
		w("| %d | %s |\n", i+1, secs(m.Wall))
	}
	w("| **median** | **%s** |\n\n", secs(median(walls(n.runs))))
	u, g := n.upstream, n.registry
	w("Requests of one more no-op run, counted by the test upstream and by a counting reverse proxy in front of the\n")
	w("registry (that run took %s through the proxy):\n\n", secs(n.countedWall))
	w("| server | request | count |\n|---|---|---|\n")
	w("| upstream | service discovery | %d |\n| upstream | `versions` | %d |\n| upstream | download API | %d |\n", u.Discovery, u.Versions, u.Download)
	w("| upstream | zip, SHA256SUMS, signature | %d, %d, %d |\n| upstream | other | %d |\n| upstream | **total** | **%d** |\n", u.Zip, u.SHASums, u.Signature, u.Other, u.Total)
	w("| registry | `/v2/` version check | %d |\n| registry | tag list (pages) | %d |\n", g.Ping, g.TagList)
	w("| registry | manifest GET, HEAD | %d, %d |\n| registry | blob HEAD, GET | %d, %d |\n", g.ManifestGet, g.ManifestHead, g.BlobHead, g.BlobGet)
	w("| registry | pushes (uploads, manifest PUTs) | %d |\n| registry | referrers, other | %d, %d |\n| registry | **total** | **%d** |\n\n", n.pushes(), g.Referrers, g.Other, g.Total)
	w("Budget (issue 7): %d `versions` calls + %d tag-list pages + %d manifest requests = **%d**; spent (all upstream\n",
		ps.providers, g.TagList, ps.providers*ps.versions, n.bound())
	w("requests and all registry requests but the `/v2/` check): **%d**.\n\n", n.spent())
}

func renderImport(w func(string, ...any), i *importResult, cpus int) {
	ps := i.set
	w("## 3. Import\n\n")
	w("Workload 1 (%d versions, %s of zips) carried as one bundle (%s, written by `export` in %s, peak RSS %s) and\n",
		ps.providers*ps.versions, mib(i.bytes), mib(i.bundleSize), secs(i.export.Wall), mib(i.export.MaxRSS))
	w("imported into an empty registry, against the same artifacts as OCI layouts (one per repository, as\n")
	w("`sync` writes them for an `oci-layout:` target) copied with one `oras cp --from-oci-layout` or one\n")
	w("`regctl image copy ocidir://…` per tag, one after the other, as users script it. Our import also verifies\n")
	w("every blob and the provenance again and publishes the provenance referrers; the others copy what the tags reach.\n")
	w("The **upload floor** (`floor -upload-bundle`, bench/floor/upload.go) pushes the bundle's blobs from the file by\n")
	w("offset with 4 parallel plain HTTP clients (POST, one PUT ?digest=), then the manifests and tags: nothing hashed,\n")
	w("verified or asked first.\n\n")
	w("| run | tofu-oci-mirror import | oras cp | regctl image copy | upload floor | oras ÷ ours | regctl ÷ ours | ours ÷ floor |\n|---|---|---|---|---|---|---|---|\n")
	for k, x := range i.runs {
		w("| %d | %s | %s | %s | %s | %.2f | %.2f | %.2f |\n", k+1, secs(x.ours.Wall), secs(x.oras.Wall), secs(x.regctl.Wall), secs(x.floor.Wall),
			x.oras.Wall.Seconds()/x.ours.Wall.Seconds(), x.regctl.Wall.Seconds()/x.ours.Wall.Seconds(), x.ours.Wall.Seconds()/x.floor.Wall.Seconds())
	}
	ours, oras, regctl := i.columns()
	floor := i.floor()
	o, a, g, fl := median(walls(ours)), median(walls(oras)), median(walls(regctl)), median(walls(floor))
	w("| **median** | **%s** | **%s** | **%s** | **%s** | **%.2f** | **%.2f** | **%.2f** |\n", secs(o), secs(a), secs(g), secs(fl), ratio(oras, ours), ratio(regctl, ours), ratio(ours, floor))
	w("| MB/s | %.0f | %.0f | %.0f | %.0f | | | |\n\n", mbps(i.bytes, o), mbps(i.bytes, a), mbps(i.bytes, g), mbps(i.bytes, fl))
	renderCPU(w, cpus, []string{"tofu-oci-mirror import", "oras cp", "regctl image copy", "upload floor"}, ours, oras, regctl, floor)
	w("Peak RSS of the import: %s.\n\n", mib(peakRSS(ours)))
	if len(i.byConcurrency) > 0 {
		w("The same import once more at other `--concurrency` settings (one run each; the default is 4):\n\n")
		w("| --concurrency | wall | tool CPU | registry CPU |\n|---|---|---|---|\n")
		for _, x := range i.byConcurrency {
			w("| %s | %s | %s | %s |\n", x.concurrency, secs(x.m.Wall), secs(x.m.CPU), secs(x.m.RegistryCPU))
		}
		w("\n")
	}
}

func renderMemory(w func(string, ...any), m *memoryResult) {
	w("## 4. Memory\n\n")
	w("One provider package of %s (stored zip of pseudo-random bytes), peak resident set size of the\n", mib(m.size))
	w("tofu-oci-mirror process, as `/usr/bin/time -f %%M` reports it:\n\n")
	w("| command | wall | peak RSS | < 100 MiB |\n|---|---|---|---|\n")
	for _, x := range []struct {
		name string
		m    measurement
	}{{"`sync` into an empty registry", m.sync}, {"`export --output bundle.tar`", m.export}, {"`import bundle.tar` into an empty registry", m.imp}} {
		w("| %s | %s | %s | %s |\n", x.name, secs(x.m.Wall), mib(x.m.MaxRSS), yesNo(x.m.MaxRSS < memoryTarget))
	}
	w("\n")
}

func renderScaling(w func(string, ...any), s *scalingResult) {
	ps := s.set
	w("## 5. Scaling\n\n")
	w("Workload 1 (%d packages, %s) at each `--concurrency`, and the floor with as many parallel clients;\n", ps.packages(), mib(s.bytes))
	w("median of the runs, each into an empty registry.\n\n")
	w("| concurrency | tofu-oci-mirror | MB/s | floor | MB/s | ours ÷ floor | peak RSS (ours) |\n|---|---|---|---|---|---|---|\n")
	for _, lv := range s.levels {
		o, f := median(lv.ours), median(lv.floor)
		w("| %d | %s | %.0f | %s | %.0f | %.2f | %s |\n", lv.concurrency, secs(o), mbps(s.bytes, o), secs(f), mbps(s.bytes, f), o.Seconds()/f.Seconds(), mib(lv.oursRSS))
	}
	w("\n")
}

// renderCommands shows what ran, with the work directory as $WORK and the
// tool directory as .cache/bin.
func (r *report) renderCommands(w func(string, ...any)) {
	w("## Commands\n\n")
	w("```sh\n")
	w("make bench   # = scripts/build-test-tools.sh bench && TOFU_BENCH=1 go test -count=1 -timeout 90m -run '^TestBench$' -v ./bench/\n")
	w("```\n\n")
	w("Each process below is timed from start to exit (wall clock) by the driver; `$WORK` is its temporary directory.\n\n")
	w("```sh\n")
	w("# 1 and 5: first sync (workload 5 adds --concurrency N to both)\n")
	w("tofu-oci-mirror sync -c $WORK/w1/mirror.yaml --no-progress --log-level warn\n")
	w("floor -jobs $WORK/w1/floor-jobs.json -concurrency %d\n", r.concurrency)
	w("bash $WORK/w1/oras-procedure.sh\n")
	w("# 2: no-op (populated first with --concurrency 16)\n")
	w("tofu-oci-mirror sync -c $WORK/w2/mirror.yaml --no-progress --log-level warn\n")
	w("# 3: import\n")
	w("tofu-oci-mirror export -c $WORK/w1/mirror.yaml --output $WORK/w3/bundle.tar --spool-dir $WORK/w3/spool --no-progress --log-level warn\n")
	w("tofu-oci-mirror import -c $WORK/w1/mirror.yaml $WORK/w3/bundle.tar --spool-dir $WORK/w3/spool --no-progress --log-level warn\n")
	w("bash $WORK/w3/oras-cp.sh\n")
	w("floor -upload-bundle $WORK/w3/bundle.tar -plan $WORK/w1/mirror.yaml -concurrency 4\n")
	w("REGCTL_CONFIG=$WORK/w3/regctl.json bash $WORK/w3/regctl-copy.sh   # after: regctl registry set --tls disabled 127.0.0.1:PORT\n")
	w("# 4: memory\n")
	w("tofu-oci-mirror sync -c $WORK/w4/mirror.yaml --spool-dir $WORK/w4/spool --no-progress --log-level warn\n")
	w("tofu-oci-mirror export -c $WORK/w4/mirror.yaml --output $WORK/w4/bundle.tar --spool-dir $WORK/w4/spool --stage-dir $WORK/w4/stage --no-progress --log-level warn\n")
	w("tofu-oci-mirror import -c $WORK/w4/mirror.yaml $WORK/w4/bundle.tar --spool-dir $WORK/w4/spool --no-progress --log-level warn\n")
	w("# 6: over the emulated links (bench/wan proxies; the plans name their addresses)\n")
	w("tofu-oci-mirror sync -c $WORK/w6/mirror.yaml --concurrency N --no-progress --log-level warn\n")
	w("floor -jobs $WORK/w6/floor-jobs.json -concurrency %d\n", floorConcurrency)
	w("tofu-oci-mirror sync -c $WORK/w6/noop.yaml --no-progress --log-level warn\n")
	w("```\n\n")
	if f := r.firstSync; f != nil && f.orasScript != "" {
		w("The ORAS procedure, first version of %d (the script repeats this per version):\n\n```sh\n", f.set.providers*f.set.versions)
		w("%s```\n\n", r.scriptHead(f.orasScript, f.set.platforms+3))
	}
	if i := r.importBundle; i != nil {
		w("Workload 3's scripts, first lines (one line per tag):\n\n```sh\n%s%s```\n\n",
			r.scriptHead(i.orasScript, 3), r.scriptHead(i.regctlScript, 3))
	}
	w("The plan files name the test upstream with a host override, e.g. for workload 1:\n\n```yaml\n")
	w("version: 1\ntarget:\n  registry: \"127.0.0.1:PORT\"\n  insecure: true\nupstream:\n  ca_file: \"$WORK/…/ca.pem\"\n")
	w("  hosts:\n    registry.opentofu.org:\n      services:\n        providers.v1: \"https://127.0.0.1:PORT/v1/providers/\"\n")
	w("platforms: [%s]\nproviders:\n  - source: bench/p000\n    versions: \">= 0.0.1\"\n  # … one entry per provider\n```\n\n",
		strings.Join(allPlatforms[:max(r.settings.w1Platforms, 1)], ", "))
	w("Settings (environment variables of `make bench`; defaults are issue 7's sizes): BENCH_RUNS=%d,\n", r.settings.runs)
	w("BENCH_W1_PROVIDERS=%d, BENCH_W1_VERSIONS=%d, BENCH_W1_PLATFORMS=%d, BENCH_W1_SIZE=%d, BENCH_W2_PROVIDERS=%d,\n",
		r.settings.w1Providers, r.settings.w1Versions, r.settings.w1Platforms, r.settings.w1Size, r.settings.w2Providers)
	w("BENCH_W2_VERSIONS=%d, BENCH_W2_PLATFORMS=%d, BENCH_W4_SIZE=%d, BENCH_W5_LEVELS=%s,\n",
		r.settings.w2Versions, r.settings.w2Platforms, r.settings.w4Size, joinInts(r.settings.w5Levels))
	w("BENCH_WAN_RTT=%v, BENCH_WAN_CONN_BW=%d, BENCH_WAN_TOTAL_BW=%d, BENCH_W6_LEVELS=%s.\n",
		r.settings.wanRTT, r.settings.wanConnBW, r.settings.wanTotalBW, joinInts(r.settings.w6Levels))
}

// scriptHead is the first lines of a generated script after its preamble,
// with machine-specific paths shortened.
func (r *report) scriptHead(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#!") || strings.HasPrefix(line, "set ") {
			continue
		}
		out = append(out, line)
		if len(out) == lines {
			break
		}
	}
	s := strings.Join(out, "\n") + "\n"
	s = shortenPaths(s, filepath.Dir(filepath.Dir(path)))
	return s
}

func shortenPaths(s, work string) string {
	s = strings.ReplaceAll(s, work, "$WORK")
	for _, tool := range []string{"oras", "regctl"} {
		s = replaceToolPath(s, tool)
	}
	return s
}

// replaceToolPath turns /abs/path/.cache/bin/oras into oras.
func replaceToolPath(s, tool string) string {
	var out []string
	for _, f := range strings.Split(s, "\n") {
		words := strings.Split(f, " ")
		for k, word := range words {
			if strings.HasSuffix(word, "/.cache/bin/"+tool) {
				words[k] = tool
			}
		}
		out = append(out, strings.Join(words, " "))
	}
	return strings.Join(out, "\n")
}

func joinInts(xs []int) string {
	var s []string
	for _, x := range xs {
		s = append(s, fmt.Sprint(x))
	}
	return strings.Join(s, ",")
}

// wanMeasurements is the runs' process measurements.
func wanMeasurements(runs []wanRun) []measurement {
	var ms []measurement
	for _, r := range runs {
		ms = append(ms, r.m)
	}
	return ms
}

// medianOf is the median of the runs' values of f.
func medianOf(runs []wanRun, f func(wanRun) float64) float64 {
	var xs []float64
	for _, r := range runs {
		xs = append(xs, f(r))
	}
	return median(xs)
}

func upConns(r wanRun) float64 { return float64(r.up.Accepted) }

// versionCount is the number of provider versions in a set.
func (ps providerSet) versionCount() int { return ps.providers * ps.versions }

func perVersion(n int, ps providerSet) float64 {
	return float64(n) / float64(max(ps.versionCount(), 1))
}

func renderWANSummary(w func(string, ...any), x *wanResult) {
	floor := networkFloor(x.bytes, x.link, x.regLink, 0)
	if lv := x.level(x.defaultConcurrency); lv != nil && len(lv.runs) > 0 {
		d := median(walls(wanMeasurements(lv.runs)))
		ratio := d.Seconds() / floor.Seconds()
		best, bestD := 0, time.Duration(0)
		for _, l := range x.levels {
			if m := median(walls(wanMeasurements(l.runs))); bestD == 0 || m < bestD {
				best, bestD = l.concurrency, m
			}
		}
		w("| 6. first sync over the WAN (%s), %s | tofu-oci-mirror at the default `--concurrency %d`: %s (%.0f MB/s, %.0f upstream connections); network floor %s: **%.2f×** (best: %.2f× at %d) | within 1.25× of the network floor | %s |\n",
			x.link, mib(x.bytes), x.defaultConcurrency, secs(d), mbps(x.bytes, d), medianOf(lv.runs, upConns), secs(floor), ratio,
			bestD.Seconds()/floor.Seconds(), best, yesNo(ratio <= 1.25))
	}
	var parts []string
	for _, l := range x.levels {
		parts = append(parts, fmt.Sprintf("%d: %.0f", l.concurrency, mbps(x.bytes, median(walls(wanMeasurements(l.runs))))))
	}
	w("| 6. scaling over the WAN (MB/s by --concurrency) | %s (link total %.0f MB/s) | choose the default from data | |\n", strings.Join(parts, ", "), float64(x.link.TotalBytesPerSec)/1e6)
	if len(x.noopRuns) > 0 {
		d := median(walls(wanMeasurements(x.noopRuns)))
		fc, nc := x.firstCounted, x.noopCounted
		w("| 6. nightly no-op over the WAN, %d versions | **%s** wall at %v RTT; requests per version: first sync %.1f upstream + %.1f registry, no-op %.2f + %.2f | < 5 s | %s |\n",
			x.noopSet.versionCount(), secs(d), x.link.RTT,
			perVersion(fc.upstream.Total, x.set), perVersion(fc.registry.Total, x.set),
			perVersion(nc.upstream.Total, x.noopSet), perVersion(nc.registry.Total, x.noopSet), yesNo(d < 5*time.Second))
	}
}

func renderWAN(w func(string, ...any), x *wanResult, runs, cpus int) {
	ps := x.set
	floor := networkFloor(x.bytes, x.link, x.regLink, 0)
	w("## 6. Over a wide-area link\n\n")
	w("Workloads 1 and 2 again over emulated links, shaping TCP proxies on 127.0.0.1 (bench/wan):\n\n")
	w("- to the test upstream, a wide-area link like release assets fetched from a data centre: %s;\n", x.link)
	w("- to the registry, the local network: %s.\n\n", x.regLink)
	w("The upstream offers HTTP/2 and HTTP/1.1 by ALPN, as GitHub and registry.opentofu.org do, and hands out URLs\n")
	w("under its proxy's address, so every request crosses the link. A proxy delays each direction by RTT/2, makes a\n")
	w("new connection wait one RTT (SYN, SYN-ACK) and paces bytes through a bucket per connection and one shared by\n")
	w("all; it does not model loss, TCP slow start or jitter, so a real link of these figures is no faster.\n\n")

	w("### First sync\n\n")
	w("Workload 1: %d providers × %d versions × %d platforms = %d packages of %s (zips of %s), into an empty\n",
		ps.providers, ps.versions, ps.platforms, ps.packages(), mib(x.set.platformsSize(x.bytes)), mib(x.bytes))
	w("registry at each `--concurrency`: %d run(s) at the CLI's default (%d), one at each other level to keep the suite\n", runs, x.defaultConcurrency)
	w("short (a transfer capped by the link varies little). \"Connections\" is the TCP connections each link accepted:\n")
	w("with HTTP/2 one connection can carry every download, and then its %s cap is the sync's. The floor\n", rateString(x.link.PerConnBytesPerSec))
	w("at a level is the network floor with at most that many connections' bandwidth.\n\n")
	w("| --concurrency | runs | tofu-oci-mirror | MB/s | upstream connections | registry connections | floor at this level | ours ÷ floor here | ours ÷ network floor |\n")
	w("|---|---|---|---|---|---|---|---|---|\n")
	for _, lv := range x.levels {
		d := median(walls(wanMeasurements(lv.runs)))
		fl := networkFloor(x.bytes, x.link, x.regLink, lv.concurrency)
		mark := ""
		if lv.concurrency == x.defaultConcurrency {
			mark = " (default)"
		}
		w("| %d%s | %d | %s | %.0f | %.0f | %.0f | %s | %.2f | %.2f |\n", lv.concurrency, mark, len(lv.runs), secs(d), mbps(x.bytes, d),
			medianOf(lv.runs, upConns), medianOf(lv.runs, func(r wanRun) float64 { return float64(r.reg.Accepted) }),
			secs(fl), d.Seconds()/fl.Seconds(), d.Seconds()/floor.Seconds())
	}
	w("\n")

	w("The **network floor**: the zips' %s at the link's total %s = %s, plus the round trips no client can\n",
		mib(x.bytes), rateString(x.link.TotalBytesPerSec), secs(networkFloor(x.bytes, wan.Config{TotalBytesPerSec: x.link.TotalBytesPerSec}, wan.Config{}, 0)))
	w("avoid before the last byte is in, one after the other:\n\n")
	w("| round trip | link | time |\n|---|---|---|\n")
	for _, step := range criticalPath {
		name, rtt := "upstream", x.link.RTT
		if step.registry {
			name, rtt = "registry", x.regLink.RTT
		}
		w("| %s | %s | %v |\n", step.what, name, rtt)
	}
	w("| **network floor** | | **%s** |\n\n", secs(floor))
	w("Left out, because they overlap the transfer:\n\n")
	for _, s := range notOnCriticalPath {
		w("- %s\n", s)
	}
	w("\n")
	if len(x.floor) > 0 {
		fd := median(walls(wanMeasurements(x.floor)))
		w("The **measured floor**: bench/floor over the same links with %d downloads in flight over HTTP/1.1 (one\n", floorConcurrency)
		w("connection each; no API calls, the URLs are known beforehand, nothing verified) took **%s** (%.0f MB/s,\n", secs(fd), mbps(x.bytes, fd))
		w("%.0f upstream connections): %.2f× the network floor. Beyond the network floor it pays one round trip per\n", medianOf(x.floor, upConns), fd.Seconds()/floor.Seconds())
		w("package on each connection (hidden while other connections have bandwidth to spare) and this machine's share:\n")
		w("the registry hashing and writing every byte, TLS and the proxies on the same CPUs (see the CPU table below).\n\n")
	}
	if lv := x.level(x.defaultConcurrency); lv != nil && len(lv.runs) > 0 {
		w("Runs at the default `--concurrency %d`:\n\n", x.defaultConcurrency)
		w("| run | tofu-oci-mirror | upstream connections | bytes down the link | floor (%d connections) |\n|---|---|---|---|---|\n", floorConcurrency)
		for i, r := range lv.runs {
			fl := "–"
			if i < len(x.floor) {
				fl = fmt.Sprintf("%s over %d connections", secs(x.floor[i].m.Wall), x.floor[i].up.Accepted)
			}
			w("| %d | %s | %d | %s | %s |\n", i+1, secs(r.m.Wall), r.up.Accepted, mib(r.up.Down), fl)
		}
		w("\n")
		names := []string{"tofu-oci-mirror", "floor"}
		cols := [][]measurement{wanMeasurements(lv.runs)}
		if len(x.floor) > 0 {
			cols = append(cols, wanMeasurements(x.floor))
		}
		renderCPU(w, cpus, names[:len(cols)], cols...)
		w("(The test upstream's column is this process: the upstream and both links' proxies.)\n\n")
	}

	w("### Nightly no-op\n\n")
	if len(x.noopRuns) > 0 {
		nps := x.noopSet
		w("Workload 2's plan (%d providers × %d versions × %d platforms), already mirrored (populated over loopback in %s),\n",
			nps.providers, nps.versions, nps.platforms, secs(x.noopPopulate))
		w("synced again with the defaults, the upstream across the WAN link and the registry across the LAN link.\n\n")
		w("| run | wall | upstream connections | registry connections |\n|---|---|---|---|\n")
		for i, r := range x.noopRuns {
			w("| %d | %s | %d | %d |\n", i+1, secs(r.m.Wall), r.up.Accepted, r.reg.Accepted)
		}
		w("| **median** | **%s** | | |\n\n", secs(median(walls(wanMeasurements(x.noopRuns)))))
	}

	w("### Requests per version\n\n")
	w("One more run of each, every request counted (the test upstream counts its own; a counting proxy between the\n")
	w("LAN link and the registry counts the registry's, uploads included). At %v a round trip, each request that\n", x.link.RTT)
	w("cannot overlap another costs that much.\n\n")
	fc, nc := x.firstCounted, x.noopCounted
	fv, nv := x.set, x.noopSet
	w("| server | request | first sync (%d versions) | per version | no-op (%d versions) | per version |\n|---|---|---|---|---|---|\n", fv.versionCount(), nv.versionCount())
	row := func(server, what string, a, b int) {
		w("| %s | %s | %d | %.2f | %d | %.2f |\n", server, what, a, perVersion(a, fv), b, perVersion(b, nv))
	}
	fu, nu, fg, ng := fc.upstream, nc.upstream, fc.registry, nc.registry
	row("upstream", "service discovery", fu.Discovery, nu.Discovery)
	row("upstream", "`versions`", fu.Versions, nu.Versions)
	row("upstream", "download API", fu.Download, nu.Download)
	row("upstream", "zip", fu.Zip, nu.Zip)
	row("upstream", "SHA256SUMS, signature", fu.SHASums+fu.Signature, nu.SHASums+nu.Signature)
	row("upstream", "other", fu.Other, nu.Other)
	row("upstream", "**total**", fu.Total, nu.Total)
	row("registry", "`/v2/` version check", fg.Ping, ng.Ping)
	row("registry", "tag list (pages)", fg.TagList, ng.TagList)
	row("registry", "manifest GET, HEAD", fg.ManifestGet+fg.ManifestHead, ng.ManifestGet+ng.ManifestHead)
	row("registry", "manifest PUT", fg.ManifestPut, ng.ManifestPut)
	row("registry", "blob HEAD, GET", fg.BlobHead+fg.BlobGet, ng.BlobHead+ng.BlobGet)
	row("registry", "blob uploads (POST, PATCH, PUT)", fg.BlobUpload, ng.BlobUpload)
	row("registry", "referrers, other", fg.Referrers+fg.Other, ng.Referrers+ng.Other)
	row("registry", "**total**", fg.Total, ng.Total)
	w("| links | upstream TCP connections | %d | | %d | |\n", fc.run.up.Accepted, nc.run.up.Accepted)
	w("| links | registry TCP connections | %d | | %d | |\n\n", fc.run.reg.Accepted, nc.run.reg.Accepted)
	w("The counted runs took %s (first sync, `--concurrency %d`) and %s (no-op).\n\n", secs(fc.run.m.Wall), x.defaultConcurrency, secs(nc.run.m.Wall))
}

// platformsSize is the average zip size of the set, for the description.
func (ps providerSet) platformsSize(total int64) int64 {
	return total / int64(max(ps.packages(), 1))
}

func rateString(n int64) string {
	if n <= 0 {
		return "unlimited bandwidth"
	}
	return fmt.Sprintf("%.0f MB/s", float64(n)/1e6)
}

// storageWhere says where registryStorage puts the registries' blobs.
func storageWhere() string {
	if d := os.Getenv("BENCH_REGISTRY_DIR"); d != "" {
		return "in $BENCH_REGISTRY_DIR, " + d
	}
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		return "on tmpfs, /dev/shm, so the runs measure the tools rather than this machine's disk"
	}
	return "in the work directory"
}
