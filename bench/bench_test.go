package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testupstream"
)

// TestBench is the suite behind `make bench`: workloads 1-5 of issue 7 and
// 6 of issue 15 (the same over an emulated wide-area link, bench/wan),
// each tool against a fresh registry process per measured run, and the
// report in bench/RESULTS.md (or $BENCH_OUT).
func TestBench(t *testing.T) {
	if os.Getenv("TOFU_BENCH") == "" {
		t.Skip("set TOFU_BENCH=1 (or run `make bench`) to run the benchmark suite")
	}
	s := loadSettings(t)
	root := repoRoot(t)
	if s.out == "" {
		s.out = filepath.Join(root, "bench", "RESULTS.md")
	}
	work := t.TempDir()
	if d := os.Getenv("BENCH_WORKDIR"); d != "" {
		work = d
	}
	b := &bench{t: t, s: s, work: work, rep: &report{settings: s, started: time.Now()}}
	b.rep.machine = describeMachine(root)
	t.Logf("load average at start: %s (nproc %d)", b.rep.machine.LoadStart, b.rep.machine.CPUs)
	b.tools = buildTools(t, root, b.dir("bin"))
	b.rep.concurrency = defaultConcurrency(b.tools.cli)
	b.reg = newRegistry(t, b.tools.registry, b.dir("registry"))

	if s.enabled(2) {
		b.noop()
		b.save()
	}
	if s.enabled(1) || s.enabled(3) || s.enabled(5) {
		b.prepareFirstSync()
	}
	if s.enabled(1) {
		b.firstSync()
		b.save()
	}
	if s.enabled(3) {
		b.importBundle()
		b.save()
	}
	if s.enabled(5) {
		b.scaling()
		b.save()
	}
	if s.enabled(4) {
		b.memory()
		b.save()
	}
	if s.enabled(6) {
		b.wan()
		b.save()
	}
	t.Logf("load average at end: %s; report: %s", loadAverage(), s.out)
}

// bench holds what the workloads share.
type bench struct {
	t     *testing.T
	s     settings
	work  string
	tools tools
	reg   *registryProc // emptied before each measured run
	rep   *report

	// Workload 1's catalogue, shared by workloads 3 and 5.
	w1Set   providerSet
	w1Up    *testupstream.Server
	w1Plan  string // plan file targeting reg
	w1Jobs  string // floor job file
	w1Bytes int64  // sum of the zips' sizes
	w1Zips  string // the zips on disk, for ORAS

	// Workload 2's mirrored plan, shared by workload 6.
	w2 *noopState
}

func (b *bench) dir(name string) string {
	d := filepath.Join(b.work, name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		b.t.Fatal(err)
	}
	return d
}

func (b *bench) log(name string) string { return filepath.Join(b.dir("logs"), name+".log") }

func (b *bench) save() {
	b.rep.elapsed = time.Since(b.rep.started)
	b.rep.machine.LoadEnd = loadAverage()
	if err := os.WriteFile(b.s.out, []byte(b.rep.render()), 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// measured runs one measured step against reg and adds the CPU time the
// registry and the test upstream (this process) spent meanwhile.
func measured(reg *registryProc, step func() measurement) measurement {
	r0, s0 := reg.cpu(), selfCPU()
	m := step()
	m.RegistryCPU, m.UpstreamCPU = reg.cpu()-r0, selfCPU()-s0
	return m
}

// cli runs tofu-oci-mirror with the flags every benchmark run uses.
func (b *bench) cli(logName string, args ...string) measurement {
	b.t.Helper()
	return execute(b.t, b.log(logName), nil, b.tools.cli, append(args, "--no-progress", "--log-level", "warn")...)
}

// complete checks, with our planner, that the registry holds every version
// of plan in OpenTofu's layout: `plan --detailed-exitcode` exits 0.
func (b *bench) complete(plan, who string) {
	b.t.Helper()
	out := expectExit(b.t, 0, b.tools.cli, "plan", "-c", plan, "--detailed-exitcode", "--no-progress", "--log-level", "warn")
	if !strings.Contains(out, "0 versions to copy") {
		b.t.Fatalf("after %s the plan still has work:\n%s", who, out)
	}
}

// prepareFirstSync publishes workload 1 upstream, writes its plan and the
// floor's job file, and saves the zips to disk for the ORAS procedure.
func (b *bench) prepareFirstSync() {
	t := b.t
	b.w1Set = providerSet{providers: b.s.w1Providers, versions: b.s.w1Versions, platforms: b.s.w1Platforms}
	b.w1Up = testupstream.New(t, testupstream.WithPackageSize(b.s.w1Size))
	b.w1Set.publish(b.w1Up)
	b.w1Plan = filepath.Join(b.dir("w1"), "mirror.yaml")
	writePlan(t, b.w1Plan, b.w1Up, b.w1Set, b.reg.Host)
	jobs := floorJobs(t, b.w1Up, b.w1Set, b.reg.Host, b.w1Up.URL)
	b.w1Jobs = filepath.Join(b.dir("w1"), "floor-jobs.json")
	if err := os.WriteFile(b.w1Jobs, jobs, 0o644); err != nil {
		t.Fatal(err)
	}
	b.w1Zips = b.dir("w1/zips")
	downloadZips(t, b.w1Up, jobs, b.w1Zips)
	entries, err := os.ReadDir(b.w1Zips)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		b.w1Bytes += fi.Size()
	}
}

// orasProcedure writes the script a user of ORAS runs for workload 1:
// per version, `oras push` each platform's zip into an OCI layout,
// `oras manifest index create` the provider index, `oras cp` it to the
// registry (OpenTofu's documented procedure, with ORAS 1.3 building the
// index instead of hand-editing index.json).
func (b *bench) orasProcedure(layouts string) string {
	ps := b.w1Set
	var sb strings.Builder
	fmt.Fprintf(&sb, "#!/usr/bin/env bash\nset -euo pipefail\ncd %q\n", b.w1Zips)
	for i := range ps.providers {
		for j := range ps.versions {
			v := ps.version(j)
			layout := filepath.Join(layouts, ps.typeName(i), v)
			for _, pl := range ps.platformList() {
				goos, goarch, _ := strings.Cut(pl, "_")
				fmt.Fprintf(&sb, "%s push --artifact-type application/vnd.opentofu.provider-target --artifact-platform %s/%s --oci-layout %s:%s terraform-provider-%s_%s_%s.zip:archive/zip\n",
					b.tools.oras, goos, goarch, layout, pl, ps.typeName(i), v, pl)
			}
			fmt.Fprintf(&sb, "%s manifest index create --oci-layout --artifact-type application/vnd.opentofu.provider %s:%s %s\n",
				b.tools.oras, layout, v, strings.Join(ps.platformList(), " "))
			fmt.Fprintf(&sb, "%s cp --from-oci-layout %s:%s %s/%s:%s --to-plain-http\n", b.tools.oras, layout, v, b.reg.Host, ps.repository(i), v)
		}
	}
	path := filepath.Join(b.dir("w1"), "oras-procedure.sh")
	if err := os.WriteFile(path, []byte(sb.String()), 0o755); err != nil {
		b.t.Fatal(err)
	}
	return path
}

// rotate runs the steps in an order that shifts by one each run, so slow
// drift of the machine does not always favour the same tool.
func rotate(run int, steps ...func()) {
	for k := range steps {
		steps[(run+k)%len(steps)]()
	}
}

// firstSync is workload 1: our sync (download, verify, publish) against the
// ORAS procedure over zips already on disk and against the floor.
func (b *bench) firstSync() {
	t := b.t
	layouts := filepath.Join(b.work, "w1", "oras-layouts")
	script := b.orasProcedure(layouts)
	res := &firstSyncResult{set: b.w1Set, size: b.s.w1Size, bytes: b.w1Bytes, orasScript: script}
	for run := range b.s.runs {
		var r firstSyncRun
		rotate(run,
			func() {
				b.reg.reset(t)
				r.ours = measured(b.reg, func() measurement { return b.cli("w1-sync", "sync", "-c", b.w1Plan) })
				if !strings.Contains(r.ours.Stdout, fmt.Sprintf("Sync: %d copied", b.w1Set.providers*b.w1Set.versions)) {
					t.Fatalf("sync did not copy everything: %s", r.ours.Stdout)
				}
				if run == 0 {
					b.complete(b.w1Plan, "tofu-oci-mirror sync")
				}
			},
			func() {
				b.reg.reset(t)
				if err := os.RemoveAll(layouts); err != nil {
					t.Fatal(err)
				}
				r.oras = measured(b.reg, func() measurement { return execute(t, b.log("w1-oras"), nil, "bash", script) })
				if run == 0 {
					b.complete(b.w1Plan, "the ORAS procedure")
				}
			},
			func() {
				b.reg.reset(t)
				r.floor = measured(b.reg, func() measurement {
					return execute(t, b.log("w1-floor"), nil, b.tools.floor, "-jobs", b.w1Jobs, "-concurrency", strconv.Itoa(b.rep.concurrency))
				})
				if run == 0 {
					b.complete(b.w1Plan, "the floor")
				}
			},
		)
		t.Logf("workload 1 run %d: ours %v, ORAS %v, floor %v", run+1, r.ours.Wall, r.oras.Wall, r.floor.Wall)
		res.runs = append(res.runs, r)
	}
	_ = os.RemoveAll(layouts)
	b.reg.reset(t)
	b.rep.firstSync = res
}

// noopState is workload 2's mirrored plan, shared with workload 6.
type noopState struct {
	set      providerSet
	up       *testupstream.Server
	reg      *registryProc // holds every version of set, never reset
	populate time.Duration
}

// prepareNoop publishes workload 2 upstream and mirrors it into its own
// registry, once.
func (b *bench) prepareNoop() *noopState {
	if b.w2 != nil {
		return b.w2
	}
	t := b.t
	ps := providerSet{providers: b.s.w2Providers, versions: b.s.w2Versions, platforms: b.s.w2Platforms}
	up := testupstream.New(t) // small packages: the no-op never downloads them
	ps.publish(up)
	reg := newRegistry(t, b.tools.registry, b.dir("registry-noop"))
	plan := filepath.Join(b.dir("w2"), "mirror-populate.yaml")
	writePlan(t, plan, up, ps, reg.Host)
	populate := b.cli("w2-populate", "sync", "-c", plan, "--concurrency", "16")
	want := fmt.Sprintf("Sync: %d copied", ps.providers*ps.versions)
	if !strings.Contains(populate.Stdout, want) {
		t.Fatalf("populating workload 2: want %q, got %s", want, populate.Stdout)
	}
	b.w2 = &noopState{set: ps, up: up, reg: reg, populate: populate.Wall}
	return b.w2
}

// unchanged is what a no-op sync of ps prints.
func (ps providerSet) unchanged() string {
	return fmt.Sprintf("0 copied, %d unchanged, 0 failed", ps.providers*ps.versions)
}

// noop is workload 2: a large plan already mirrored, synced again.
func (b *bench) noop() {
	t := b.t
	w2 := b.prepareNoop()
	ps, up, reg := w2.set, w2.up, w2.reg
	proxy := newCountingProxy(t, reg.Host, false)
	plan := filepath.Join(b.dir("w2"), "mirror.yaml")
	writePlan(t, plan, up, ps, reg.Host)
	counted := filepath.Join(b.dir("w2"), "mirror-counted.yaml")
	writePlan(t, counted, up, ps, proxy.Host)

	res := &noopResult{set: ps, populate: w2.populate}
	unchanged := ps.unchanged()
	for run := range b.s.runs {
		m := b.cli("w2-noop", "sync", "-c", plan)
		if !strings.Contains(m.Stdout, unchanged) {
			t.Fatalf("no-op sync was not a no-op: %s", m.Stdout)
		}
		t.Logf("workload 2 run %d: %v", run+1, m.Wall)
		res.runs = append(res.runs, m)
	}
	up.ResetCounts()
	proxy.resetCounts()
	m := b.cli("w2-noop-counted", "sync", "-c", counted)
	if !strings.Contains(m.Stdout, unchanged) {
		t.Fatalf("counted no-op sync was not a no-op: %s", m.Stdout)
	}
	res.countedWall = m.Wall
	res.upstream = up.Counts()
	res.registry = proxy.counts()
	b.rep.noop = res
}

// importBundle is workload 3: workload 1 as a bundle imported into an empty
// registry, against oras cp and regctl image copy of the same content as
// OCI layouts, one call per tag, and against the upload floor (the
// bundle's blobs pushed from the file by plain parallel HTTP clients).
func (b *bench) importBundle() {
	t := b.t
	res := &importResult{set: b.w1Set, bytes: b.w1Bytes}
	bundle := filepath.Join(b.dir("w3"), "bundle.tar")
	exp := b.cli("w3-export", "export", "-c", b.w1Plan, "--output", bundle, "--spool-dir", b.dir("w3/spool"), "--sign-key", bundleKey(t).PrivateFile)
	res.export = exp
	if fi, err := os.Stat(bundle); err == nil {
		res.bundleSize = fi.Size()
	}
	// The same artifacts as OCI layouts, one per repository, as our sync
	// writes them for an oci-layout: target.
	layouts := b.dir("w3/layouts")
	layoutPlan := filepath.Join(b.dir("w3"), "mirror-layout.yaml")
	writePlan(t, layoutPlan, b.w1Up, b.w1Set, "oci-layout:"+layouts)
	b.cli("w3-layout", "sync", "-c", layoutPlan)

	regctlConfig := filepath.Join(b.dir("w3"), "regctl.json")
	regctlEnv := []string{"REGCTL_CONFIG=" + regctlConfig}
	execute(t, b.log("w3-regctl"), regctlEnv, b.tools.regct, "registry", "set", "--tls", "disabled", b.reg.Host)

	var oras, regctl strings.Builder
	oras.WriteString("#!/usr/bin/env bash\nset -euo pipefail\n")
	regctl.WriteString("#!/usr/bin/env bash\nset -euo pipefail\n")
	for i := range b.w1Set.providers {
		repo := b.w1Set.repository(i)
		dir := filepath.Join(layouts, filepath.FromSlash(repo))
		for j := range b.w1Set.versions {
			v := b.w1Set.version(j)
			fmt.Fprintf(&oras, "%s cp --from-oci-layout %s:%s %s/%s:%s --to-plain-http\n", b.tools.oras, dir, v, b.reg.Host, repo, v)
			fmt.Fprintf(&regctl, "%s image copy ocidir://%s:%s %s/%s:%s\n", b.tools.regct, dir, v, b.reg.Host, repo, v)
		}
	}
	res.orasScript = filepath.Join(b.dir("w3"), "oras-cp.sh")
	res.regctlScript = filepath.Join(b.dir("w3"), "regctl-copy.sh")
	for path, body := range map[string]string{res.orasScript: oras.String(), res.regctlScript: regctl.String()} {
		if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	want := fmt.Sprintf("Import: %d copied", b.w1Set.providers*b.w1Set.versions)
	for run := range b.s.runs {
		var r importRun
		rotate(run,
			func() {
				b.reg.reset(t)
				r.ours = measured(b.reg, func() measurement {
					return b.cli("w3-import", "import", "-c", b.w1Plan, bundle, "--spool-dir", b.dir("w3/spool"))
				})
				if !strings.Contains(r.ours.Stdout, want) {
					t.Fatalf("import: want %q, got %s", want, r.ours.Stdout)
				}
				if run == 0 {
					b.complete(b.w1Plan, "tofu-oci-mirror import")
				}
			},
			func() {
				b.reg.reset(t)
				r.oras = measured(b.reg, func() measurement { return execute(t, b.log("w3-oras"), nil, "bash", res.orasScript) })
				if run == 0 {
					b.complete(b.w1Plan, "oras cp")
				}
			},
			func() {
				b.reg.reset(t)
				r.regctl = measured(b.reg, func() measurement { return execute(t, b.log("w3-regctl"), regctlEnv, "bash", res.regctlScript) })
				if run == 0 {
					b.complete(b.w1Plan, "regctl image copy")
				}
			},
			func() {
				b.reg.reset(t)
				r.floor = measured(b.reg, func() measurement {
					return execute(t, b.log("w3-floor"), nil, b.tools.floor, "-upload-bundle", bundle, "-plan", b.w1Plan, "-concurrency", "4")
				})
				if run == 0 {
					b.complete(b.w1Plan, "the upload floor")
				}
			},
		)
		t.Logf("workload 3 run %d: ours %v, oras %v, regctl %v, upload floor %v", run+1, r.ours.Wall, r.oras.Wall, r.regctl.Wall, r.floor.Wall)
		res.runs = append(res.runs, r)
	}
	// Diagnostic: does the import use its concurrency? Same bundle, one
	// upload at a time and eight.
	for _, c := range []string{"1", "8"} {
		b.reg.reset(t)
		m := measured(b.reg, func() measurement {
			return b.cli("w3-import", "import", "-c", b.w1Plan, bundle, "--spool-dir", b.dir("w3/spool"), "--concurrency", c)
		})
		res.byConcurrency = append(res.byConcurrency, importAt{concurrency: c, m: m})
	}
	_ = os.Remove(bundle)
	_ = os.RemoveAll(layouts)
	b.reg.reset(t)
	b.rep.importBundle = res
}

// scaling is workload 5: workload 1 at each concurrency level, ours and
// the floor, each run against an empty registry.
func (b *bench) scaling() {
	t := b.t
	res := &scalingResult{set: b.w1Set, bytes: b.w1Bytes}
	for _, c := range b.s.w5Levels {
		lv := scalingLevel{concurrency: c}
		for run := range b.s.runs {
			var ours, floor measurement
			rotate(run,
				func() {
					b.reg.reset(t)
					ours = measured(b.reg, func() measurement { return b.cli("w5-sync", "sync", "-c", b.w1Plan, "--concurrency", strconv.Itoa(c)) })
				},
				func() {
					b.reg.reset(t)
					floor = measured(b.reg, func() measurement {
						return execute(t, b.log("w5-floor"), nil, b.tools.floor, "-jobs", b.w1Jobs, "-concurrency", strconv.Itoa(c))
					})
				},
			)
			lv.ours = append(lv.ours, ours.Wall)
			lv.floor = append(lv.floor, floor.Wall)
			lv.oursRSS = max(lv.oursRSS, ours.MaxRSS)
		}
		t.Logf("workload 5 concurrency %d: ours %v, floor %v", c, median(lv.ours), median(lv.floor))
		res.levels = append(res.levels, lv)
	}
	b.reg.reset(t)
	b.rep.scaling = res
}

// memory is workload 4: one large package synced, exported and imported;
// peak RSS of each process.
func (b *bench) memory() {
	t := b.t
	ps := providerSet{providers: 1, versions: 1, platforms: 1}
	up := testupstream.New(t, testupstream.WithPackageSize(b.s.w4Size))
	ps.publish(up)
	plan := filepath.Join(b.dir("w4"), "mirror.yaml")
	writePlan(t, plan, up, ps, b.reg.Host)
	spool := b.dir("w4/spool")
	bundle := filepath.Join(b.dir("w4"), "bundle.tar")
	res := &memoryResult{size: b.s.w4Size}

	b.reg.reset(t)
	res.sync = b.cli("w4-sync", "sync", "-c", plan, "--spool-dir", spool)
	res.export = b.cli("w4-export", "export", "-c", plan, "--output", bundle, "--spool-dir", spool, "--stage-dir", b.dir("w4/stage"), "--sign-key", bundleKey(t).PrivateFile)
	b.reg.reset(t)
	res.imp = b.cli("w4-import", "import", "-c", plan, bundle, "--spool-dir", spool)
	if !strings.Contains(res.imp.Stdout, "Import: 1 copied") {
		t.Fatalf("import of the large package: %s", res.imp.Stdout)
	}
	b.complete(plan, "the large import")
	_ = os.Remove(bundle)
	_ = os.RemoveAll(filepath.Join(b.work, "w4", "stage"))
	b.reg.reset(t)
	b.rep.memory = res
}
