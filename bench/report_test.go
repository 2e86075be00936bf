package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

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
	w("the CNCF distribution registry v3.1.2 as a separate process with filesystem storage, ORAS CLI v1.3.6 and\n")
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
	w("\n")
}

func (r *report) renderFirstSync(w func(string, ...any), f *firstSyncResult) {
	ps := f.set
	w("## 1. First sync\n\n")
	w("%d providers × %d versions × %d platforms = %d packages of %s (zips of %s in all), into an empty registry.\n\n",
		ps.providers, ps.versions, ps.platforms, ps.packages(), mib(f.size), mib(f.bytes))
	w("- **tofu-oci-mirror** `sync` (default `--concurrency 4`): per version, the download API call, `SHA256SUMS` and\n")
	w("  its signature verified, each zip downloaded over HTTPS into a spool file while hashed, uploaded, manifests,\n")
	w("  index, provenance referrer, tag.\n")
	w("- **ORAS procedure** over the same zips already on disk, one command at a time as the docs show it: per version,\n")
	w("  `oras push` of each platform's zip into an OCI layout, `oras manifest index create`, `oras cp` to the registry.\n")
	w("- **floor** (bench/floor): the same bytes downloaded over loopback from the test upstream and streamed straight\n")
	w("  into blob uploads (POST, PATCH, PUT ?digest=) by 4 parallel plain HTTP clients, hashed once, nothing verified;\n")
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
	w("floor -jobs $WORK/w1/floor-jobs.json -concurrency 4\n")
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
	w("BENCH_W2_VERSIONS=%d, BENCH_W2_PLATFORMS=%d, BENCH_W4_SIZE=%d, BENCH_W5_LEVELS=%s.\n",
		r.settings.w2Versions, r.settings.w2Platforms, r.settings.w4Size, joinInts(r.settings.w5Levels))
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
