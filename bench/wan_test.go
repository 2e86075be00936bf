package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/bench/wan"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testupstream"
)

// Workload 6 (issue 15): workloads 1 and 2 again with the upstream across
// an emulated wide-area link (bench/wan: round-trip time, bandwidth per
// connection and in all) and the registry across an emulated local network
// (1 ms round trip). Both links are TCP proxies on 127.0.0.1 that stop by
// themselves at the test binary's deadline at the latest.

// floorConcurrency is how many downloads the measured floor keeps in
// flight over the WAN link: enough connections that the total bandwidth,
// not the per-connection cap, is the limit.
const floorConcurrency = 16

// criticalPath is the round trips no client can avoid before the last
// byte of a first sync is in, in order; the network floor is these plus
// the bytes at the link's total bandwidth. Everything else (other
// versions' answers, SHA256SUMS and its signature, other downloads, blob
// uploads streamed as the bytes arrive) can overlap the transfer.
var criticalPath = []struct {
	what     string
	registry bool // on the registry's link; else the upstream's
}{
	{"TCP connect to the upstream (SYN, SYN-ACK)", false},
	{"TLS 1.3 handshake (ClientHello to server Finished)", false},
	{"the first provider's `versions`", false},
	{"the download answer of its first platform (it names the zip)", false},
	{"the zip's GET: request out, first byte back (the transfer follows)", false},
	{"the last blob upload's closing PUT ?digest=", true},
	{"the last platform manifest's PUT", true},
	{"the last index's PUT with its tag", true},
}

// notOnCriticalPath explains the round trips the floor leaves out.
var notOnCriticalPath = []string{
	"service discovery: the plan's host override names the providers.v1 URL (against registry.opentofu.org it would be one more round trip)",
	"SHA256SUMS and its signature: fetched alongside the zip (another stream or connection); checking them needs the whole zip anyway",
	"every other version's answers and downloads: they overlap the transfer, which the total bandwidth bounds",
	"connecting to the registry and each upload's POST: done while the first zip is still on its way",
}

// networkFloor is the least time the first sync of bytes could take over
// link and regLink with enough connections; at a given concurrency the
// per-connection cap may bind instead (concurrency 0: unbounded).
func networkFloor(bytes int64, link, regLink wan.Config, concurrency int) time.Duration {
	rate := float64(link.TotalBytesPerSec)
	if link.PerConnBytesPerSec > 0 && concurrency > 0 {
		if c := float64(link.PerConnBytesPerSec) * float64(concurrency); rate <= 0 || c < rate {
			rate = c
		}
	}
	var d time.Duration
	if rate > 0 {
		d = time.Duration(float64(bytes) / rate * float64(time.Second))
	}
	for _, step := range criticalPath {
		if step.registry {
			d += regLink.RTT
		} else {
			d += link.RTT
		}
	}
	return d
}

// wanRun is one process run over the links.
type wanRun struct {
	m       measurement
	up, reg wan.Stats // what each link carried during the run
}

type wanLevel struct {
	concurrency int
	runs        []wanRun
}

// wanCounted is one more run with every request counted.
type wanCounted struct {
	run      wanRun
	upstream testupstream.UpstreamCounts
	registry registryCounts
}

type wanResult struct {
	link, regLink      wan.Config
	set                providerSet
	bytes              int64 // the zips' sizes
	defaultConcurrency int
	levels             []wanLevel
	floor              []wanRun // bench/floor at floorConcurrency
	firstCounted       wanCounted
	noopSet            providerSet
	noopPopulate       time.Duration
	noopRuns           []wanRun
	noopCounted        wanCounted
}

func (r *wanResult) level(c int) *wanLevel {
	for i := range r.levels {
		if r.levels[i].concurrency == c {
			return &r.levels[i]
		}
	}
	return nil
}

// linkLifetime bounds every proxy: the test binary's deadline (go test
// -timeout), or two hours without one.
func (b *bench) linkLifetime() time.Duration {
	if d, ok := b.t.Deadline(); ok {
		return max(time.Until(d), time.Minute)
	}
	return 2 * time.Hour
}

// startLink starts a shaping proxy to target, closed at the end of the test.
func (b *bench) startLink(target string, cfg wan.Config) *wan.Proxy {
	b.t.Helper()
	cfg.Lifetime = b.linkLifetime()
	p, err := wan.Start(target, cfg)
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { _ = p.Close() })
	return p
}

// overLinks measures one step against reg and records what the links
// carried meanwhile.
func overLinks(reg *registryProc, upLink, regLink *wan.Proxy, step func() measurement) wanRun {
	u0, r0 := upLink.Stats(), regLink.Stats()
	m := measured(reg, step)
	return wanRun{m: m, up: upLink.Stats().Sub(u0), reg: regLink.Stats().Sub(r0)}
}

var defaultConcurrencyRE = regexp.MustCompile(`(?m)^\s*--concurrency\b.*\(default: (\d+)\)`)

// defaultConcurrency reads sync's default --concurrency from its help, so
// the report follows the CLI (4 when the help does not say).
func defaultConcurrency(cli string) int {
	out, err := exec.Command(cli, "sync", "--help").CombinedOutput()
	if err == nil {
		if m := defaultConcurrencyRE.FindSubmatch(out); m != nil {
			if n, err := strconv.Atoi(string(m[1])); err == nil && n > 0 {
				return n
			}
		}
	}
	return 4
}

// catalogueBytes sums the sizes of every zip of ps, from one download
// answer per version (its "packages" lists every platform's size).
func catalogueBytes(b *bench, up *testupstream.Server, ps providerSet) int64 {
	var n int64
	hc := up.Client()
	for i := range ps.providers {
		for j := range ps.versions {
			goos, goarch, _ := strings.Cut(ps.platformList()[0], "_")
			var answer struct {
				Packages map[string]struct {
					PackageSize int64 `json:"package_size"`
				} `json:"packages"`
			}
			getJSON(b.t, hc, fmt.Sprintf("%s/v1/providers/bench/%s/%s/download/%s/%s", up.URL, ps.typeName(i), ps.version(j), goos, goarch), &answer)
			if len(answer.Packages) != ps.platforms {
				b.t.Fatalf("download answer of bench/%s %s lists %d packages, want %d", ps.typeName(i), ps.version(j), len(answer.Packages), ps.platforms)
			}
			for _, p := range answer.Packages {
				n += p.PackageSize
			}
		}
	}
	return n
}

// wan is workload 6: workload 1's first sync at each concurrency level
// and workload 2's no-op, with the upstream across the emulated WAN and
// the registry across the emulated LAN.
func (b *bench) wan() {
	t := b.t
	link := wan.Config{RTT: b.s.wanRTT, PerConnBytesPerSec: b.s.wanConnBW, TotalBytesPerSec: b.s.wanTotalBW}
	regLinkCfg := wan.LANDefaults()
	res := &wanResult{link: link, regLink: regLinkCfg, defaultConcurrency: defaultConcurrency(b.tools.cli)}

	// (a) Workload 1's catalogue on its own upstream, behind the WAN link;
	// it hands out URLs under the link's address.
	ps := providerSet{providers: b.s.w1Providers, versions: b.s.w1Versions, platforms: b.s.w1Platforms}
	res.set = ps
	up := testupstream.New(t, testupstream.WithPackageSize(b.s.w1Size))
	ps.publish(up)
	res.bytes = catalogueBytes(b, up, ps)
	upLink := b.startLink(up.Host, link)
	up.AdvertiseURL("https://" + upLink.Addr())
	regLink := b.startLink(b.reg.Host, regLinkCfg)
	plan := filepath.Join(b.dir("w6"), "mirror.yaml")
	writePlan(t, plan, up, ps, regLink.Addr())
	jobs := filepath.Join(b.dir("w6"), "floor-jobs.json")
	if err := os.WriteFile(jobs, floorJobs(t, up, ps, regLink.Addr(), up.AdvertisedURL()), 0o644); err != nil {
		t.Fatal(err)
	}

	levels := slices.Clone(b.s.w6Levels)
	if !slices.Contains(levels, res.defaultConcurrency) {
		levels = append(levels, res.defaultConcurrency)
	}
	slices.Sort(levels)
	levels = slices.Compact(levels)
	copied := fmt.Sprintf("Sync: %d copied", ps.providers*ps.versions)
	checked := false
	for _, c := range levels {
		lv := wanLevel{concurrency: c}
		runs := 1 // other levels: one run each, for the table
		if c == res.defaultConcurrency {
			runs = b.s.runs
		}
		for run := range runs {
			steps := []func(){func() {
				b.reg.reset(t)
				r := overLinks(b.reg, upLink, regLink, func() measurement {
					return b.cli("w6-sync", "sync", "-c", plan, "--concurrency", strconv.Itoa(c))
				})
				if !strings.Contains(r.m.Stdout, copied) {
					t.Fatalf("sync over the WAN link did not copy everything: %s", r.m.Stdout)
				}
				if !checked {
					b.complete(plan, "tofu-oci-mirror sync over the WAN link")
					checked = true
				}
				lv.runs = append(lv.runs, r)
				t.Logf("workload 6 first sync, concurrency %d, run %d: %v over %d upstream connections", c, run+1, r.m.Wall, r.up.Accepted)
			}}
			if c == res.defaultConcurrency {
				steps = append(steps, func() {
					b.reg.reset(t)
					r := overLinks(b.reg, upLink, regLink, func() measurement {
						return execute(t, b.log("w6-floor"), nil, b.tools.floor, "-jobs", jobs, "-concurrency", strconv.Itoa(floorConcurrency))
					})
					if run == 0 {
						b.complete(plan, "the floor over the WAN link")
					}
					res.floor = append(res.floor, r)
					t.Logf("workload 6 floor run %d: %v over %d upstream connections", run+1, r.m.Wall, r.up.Accepted)
				})
			}
			rotate(run, steps...)
		}
		res.levels = append(res.levels, lv)
	}

	// (d) One more first sync at the default, every request counted: the
	// registry's link leads to a counting proxy that passes the client's
	// Host on, so upload locations lead back through it.
	b.reg.reset(t)
	counter := newCountingProxy(t, b.reg.Host, true)
	countedLink := b.startLink(counter.Host, regLinkCfg)
	countedPlan := filepath.Join(b.dir("w6"), "mirror-counted.yaml")
	writePlan(t, countedPlan, up, ps, countedLink.Addr())
	up.ResetCounts()
	res.firstCounted.run = overLinks(b.reg, upLink, countedLink, func() measurement {
		return b.cli("w6-sync-counted", "sync", "-c", countedPlan, "--concurrency", strconv.Itoa(res.defaultConcurrency))
	})
	if !strings.Contains(res.firstCounted.run.m.Stdout, copied) {
		t.Fatalf("counted sync over the WAN link did not copy everything: %s", res.firstCounted.run.m.Stdout)
	}
	res.firstCounted.upstream, res.firstCounted.registry = up.Counts(), counter.counts()
	b.reg.reset(t)

	// (c) Workload 2's no-op: its mirrored plan, the upstream behind its
	// own WAN link, the registry behind a LAN link.
	w2 := b.prepareNoop()
	res.noopSet, res.noopPopulate = w2.set, w2.populate
	noopUp := b.startLink(w2.up.Host, link)
	w2.up.AdvertiseURL("https://" + noopUp.Addr())
	defer w2.up.AdvertiseURL("")
	noopReg := b.startLink(w2.reg.Host, regLinkCfg)
	noopPlan := filepath.Join(b.dir("w6"), "noop.yaml")
	writePlan(t, noopPlan, w2.up, w2.set, noopReg.Addr())
	unchanged := w2.set.unchanged()
	for run := range b.s.runs {
		r := overLinks(w2.reg, noopUp, noopReg, func() measurement { return b.cli("w6-noop", "sync", "-c", noopPlan) })
		if !strings.Contains(r.m.Stdout, unchanged) {
			t.Fatalf("no-op sync over the WAN link was not a no-op: %s", r.m.Stdout)
		}
		res.noopRuns = append(res.noopRuns, r)
		t.Logf("workload 6 no-op run %d: %v over %d upstream connections", run+1, r.m.Wall, r.up.Accepted)
	}
	noopCounter := newCountingProxy(t, w2.reg.Host, true)
	noopCountedLink := b.startLink(noopCounter.Host, regLinkCfg)
	noopCountedPlan := filepath.Join(b.dir("w6"), "noop-counted.yaml")
	writePlan(t, noopCountedPlan, w2.up, w2.set, noopCountedLink.Addr())
	w2.up.ResetCounts()
	res.noopCounted.run = overLinks(w2.reg, noopUp, noopCountedLink, func() measurement {
		return b.cli("w6-noop-counted", "sync", "-c", noopCountedPlan)
	})
	if !strings.Contains(res.noopCounted.run.m.Stdout, unchanged) {
		t.Fatalf("counted no-op sync over the WAN link was not a no-op: %s", res.noopCounted.run.m.Stdout)
	}
	res.noopCounted.upstream, res.noopCounted.registry = w2.up.Counts(), noopCounter.counts()
	b.rep.wan = res
}

// TestNetworkFloor checks the floor's arithmetic; it runs without
// TOFU_BENCH.
func TestNetworkFloor(t *testing.T) {
	link := wan.Config{RTT: 80 * time.Millisecond, PerConnBytesPerSec: 12_000_000, TotalBytesPerSec: 100_000_000}
	reg := wan.Config{RTT: time.Millisecond}
	rtts := 5*80*time.Millisecond + 3*time.Millisecond
	for _, tc := range []struct {
		concurrency int
		want        time.Duration
	}{
		{0, 6*time.Second + rtts},          // the total binds
		{16, 6*time.Second + rtts},         // 192 MB/s of connections: still the total
		{4, 12500*time.Millisecond + rtts}, // 48 MB/s
		{1, 50*time.Second + rtts},         // one connection's 12 MB/s
	} {
		if got := networkFloor(600_000_000, link, reg, tc.concurrency); got != tc.want {
			t.Errorf("concurrency %d: floor %v, want %v", tc.concurrency, got, tc.want)
		}
	}
}

func TestDefaultConcurrencyFromHelp(t *testing.T) {
	help := `OPTIONS:
   --metadata-concurrency value  version lists fetched at once (default: 16)
   --concurrency value           packages transferred (and providers planned) at once (default: 6)
`
	m := defaultConcurrencyRE.FindStringSubmatch(help)
	if m == nil || m[1] != "6" {
		t.Fatalf("parsed %q from sync's help, want 6", m)
	}
}
