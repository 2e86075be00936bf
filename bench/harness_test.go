package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/bench/wan"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testpgp"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testupstream"
)

// settings are the suite's knobs, read from the environment so quick runs
// can shrink the workloads; the defaults are the sizes of issue 7.
type settings struct {
	runs int // measured runs per comparison; medians are over these
	// Workload 1 (and 3, 5): providers × versions × platforms of size bytes.
	w1Providers, w1Versions, w1Platforms int
	w1Size                               int64
	// Workload 2: the no-op plan.
	w2Providers, w2Versions, w2Platforms int
	// Workload 4: one package of this size.
	w4Size int64
	// Workload 5: the concurrency levels.
	w5Levels []int
	// Workload 6: the emulated wide-area link to the upstream and the
	// concurrency levels of its first sync.
	wanRTT                time.Duration
	wanConnBW, wanTotalBW int64 // bytes per second
	w6Levels              []int
	// only lists the workloads to run (1..6); empty runs all.
	only map[int]bool
	// out is where the report goes.
	out string
}

func loadSettings(t testing.TB) settings {
	t.Helper()
	s := settings{
		runs:        envInt(t, "BENCH_RUNS", 3),
		w1Providers: envInt(t, "BENCH_W1_PROVIDERS", 10),
		w1Versions:  envInt(t, "BENCH_W1_VERSIONS", 5),
		w1Platforms: envInt(t, "BENCH_W1_PLATFORMS", 6),
		w1Size:      envSize(t, "BENCH_W1_SIZE", 2<<20),
		w2Providers: envInt(t, "BENCH_W2_PROVIDERS", 200),
		w2Versions:  envInt(t, "BENCH_W2_VERSIONS", 10),
		w2Platforms: envInt(t, "BENCH_W2_PLATFORMS", 4),
		w4Size:      envSize(t, "BENCH_W4_SIZE", 1<<30),
		w5Levels:    envInts(t, "BENCH_W5_LEVELS", []int{1, 4, 8, 16}),
		wanRTT:      envDuration(t, "BENCH_WAN_RTT", wan.WANDefaults().RTT),
		wanConnBW:   envSize(t, "BENCH_WAN_CONN_BW", wan.WANDefaults().PerConnBytesPerSec),
		wanTotalBW:  envSize(t, "BENCH_WAN_TOTAL_BW", wan.WANDefaults().TotalBytesPerSec),
		w6Levels:    envInts(t, "BENCH_W6_LEVELS", []int{1, 4, 8, 16}),
		only:        map[int]bool{},
		out:         os.Getenv("BENCH_OUT"),
	}
	if v := os.Getenv("BENCH_ONLY"); v != "" {
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 || n > 6 {
				t.Fatalf("BENCH_ONLY=%q: want workload numbers 1..6, comma-separated", v)
			}
			s.only[n] = true
		}
	}
	if s.w1Platforms > len(allPlatforms) || s.w2Platforms > len(allPlatforms) {
		t.Fatalf("at most %d platforms per version", len(allPlatforms))
	}
	if s.runs < 1 {
		t.Fatal("BENCH_RUNS must be at least 1")
	}
	return s
}

func (s settings) enabled(workload int) bool { return len(s.only) == 0 || s.only[workload] }

func envInt(t testing.TB, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// envInts reads a comma-separated list of positive integers.
func envInts(t testing.TB, name string, def []int) []int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var ns []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a comma-separated list of positive integers", name, v)
		}
		ns = append(ns, n)
	}
	return ns
}

// envDuration reads a Go duration such as 80ms; 0 is allowed.
func envDuration(t testing.TB, name string, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		t.Fatalf("%s=%q: want a duration such as 80ms", name, v)
	}
	return d
}

// envSize reads sizes like 2MiB, 1GiB, 4096 (for bandwidths, 12MB means
// 12 MB per second).
func envSize(t testing.TB, name string, def int64) int64 {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}} {
		if strings.HasSuffix(v, u.suffix) {
			v, mult = strings.TrimSuffix(v, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a size like 2MiB, 1GiB or 4096", name, os.Getenv(name))
	}
	return n * mult
}

// allPlatforms are the platforms a version is published for, in order:
// a workload with N platforms uses the first N.
var allPlatforms = []string{"linux_amd64", "linux_arm64", "darwin_amd64", "darwin_arm64", "windows_amd64", "freebsd_amd64"}

// providerSet is a synthetic catalogue: providers bench/pNNN, versions
// 1.V.0, each on the first platforms of allPlatforms.
type providerSet struct {
	providers, versions, platforms int
}

func (ps providerSet) packages() int { return ps.providers * ps.versions * ps.platforms }

func (ps providerSet) typeName(i int) string { return fmt.Sprintf("p%03d", i) }

func (ps providerSet) version(j int) string { return fmt.Sprintf("1.%d.0", j) }

func (ps providerSet) platformList() []string { return allPlatforms[:ps.platforms] }

// repository is where tofu-oci-mirror's default template puts provider i.
func (ps providerSet) repository(i int) string { return "opentofu-providers/bench/" + ps.typeName(i) }

// publish registers every release of the set with up.
func (ps providerSet) publish(up *testupstream.Server) {
	for i := range ps.providers {
		for j := range ps.versions {
			up.AddProvider("bench", ps.typeName(i), ps.version(j), ps.platformList()...)
		}
	}
}

// writePlan writes a plan for the set: registry is host:port (plain HTTP)
// or oci-layout:DIR.
func writePlan(t testing.TB, path string, up *testupstream.Server, ps providerSet, registry string) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\ntarget:\n  registry: %q\n", registry)
	if !strings.HasPrefix(registry, "oci-layout:") {
		b.WriteString("  insecure: true\n")
	}
	fmt.Fprintf(&b, "upstream:\n  ca_file: %q\n  hosts:\n    registry.opentofu.org:\n      services:\n        providers.v1: %q\n",
		up.CAFile, up.Services()["providers.v1"])
	fmt.Fprintf(&b, "trust:\n  bundle_keys: [%q]\n", bundleKey(t).PublicFile)
	fmt.Fprintf(&b, "platforms: [%s]\nproviders:\n", strings.Join(ps.platformList(), ", "))
	for i := range ps.providers {
		fmt.Fprintf(&b, "  - source: bench/%s\n    versions: \">= 0.0.1\"\n", ps.typeName(i))
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

var (
	bundleKeyOnce sync.Once
	bundleKeyVal  *testpgp.Key
)

// bundleKey signs the benchmark's bundles (export --sign-key) and is
// trusted by its plans, as in production; made once per run.
func bundleKey(t testing.TB) *testpgp.Key {
	bundleKeyOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tofu-oci-mirror-bench-keys-*")
		if err != nil {
			t.Fatal(err)
		}
		bundleKeyVal = testpgp.New(t, "bench bundle signer", "").Write(t, dir, "signer")
	})
	return bundleKeyVal
}

// floorJobs asks up for every package's download URL, as any client must,
// and returns the floor program's job file content. The package URLs start
// with base: up.URL, or the address of a proxy in front of up (the
// questions go to up directly, so they cost no emulated round trips).
func floorJobs(t testing.TB, up *testupstream.Server, ps providerSet, registry, base string) []byte {
	t.Helper()
	via, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	hc := up.Client()
	jobs := map[string]any{"registry": registry, "ca_file": up.CAFile}
	var versions []map[string]any
	for i := range ps.providers {
		for j := range ps.versions {
			var pkgs []map[string]string
			for _, pl := range ps.platformList() {
				goos, goarch, _ := strings.Cut(pl, "_")
				api, err := url.Parse(fmt.Sprintf("%s/v1/providers/bench/%s/%s/download/%s/%s", up.URL, ps.typeName(i), ps.version(j), goos, goarch))
				if err != nil {
					t.Fatal(err)
				}
				var answer struct {
					DownloadURL string `json:"download_url"`
					Filename    string `json:"filename"`
				}
				getJSON(t, hc, api.String(), &answer)
				rel, err := url.Parse(answer.DownloadURL)
				if err != nil {
					t.Fatal(err)
				}
				zip := api.ResolveReference(rel)
				zip.Scheme, zip.Host = via.Scheme, via.Host
				pkgs = append(pkgs, map[string]string{"url": zip.String(), "os": goos, "arch": goarch, "filename": answer.Filename})
			}
			versions = append(versions, map[string]any{"repository": ps.repository(i), "tag": ps.version(j), "packages": pkgs})
		}
	}
	jobs["versions"] = versions
	raw, err := json.MarshalIndent(jobs, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func getJSON(t testing.TB, hc *http.Client, u string, v any) {
	t.Helper()
	resp, err := hc.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", u, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

// downloadZips saves every package of the job file into dir under its
// upstream file name: the zips a user of the ORAS procedure has on disk.
func downloadZips(t testing.TB, up *testupstream.Server, jobsJSON []byte, dir string) {
	t.Helper()
	var jobs struct {
		Versions []struct {
			Packages []struct{ URL, Filename string }
		}
	}
	if err := json.Unmarshal(jobsJSON, &jobs); err != nil {
		t.Fatal(err)
	}
	hc := up.Client()
	for _, v := range jobs.Versions {
		for _, p := range v.Packages {
			resp, err := hc.Get(p.URL)
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.Create(filepath.Join(dir, p.Filename))
			if err == nil {
				_, err = io.Copy(f, resp.Body)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
			}
			resp.Body.Close()
			if err != nil {
				t.Fatalf("saving %s: %v", p.URL, err)
			}
		}
	}
}

// tools are the binaries the suite runs.
type tools struct {
	cli, floor            string // built from this work tree
	registry, oras, regct string // built by scripts/build-test-tools.sh bench
}

func repoRoot(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// buildTools builds the CLI and the floor program into dir and finds the
// pinned tools in .cache/bin, building them if missing.
func buildTools(t testing.TB, root, dir string) tools {
	t.Helper()
	tl := tools{
		cli:      filepath.Join(dir, "tofu-oci-mirror"),
		floor:    filepath.Join(dir, "floor"),
		registry: filepath.Join(root, ".cache", "bin", "registry"),
		oras:     filepath.Join(root, ".cache", "bin", "oras"),
		regct:    filepath.Join(root, ".cache", "bin", "regctl"),
	}
	if p := os.Getenv("BENCH_CLI"); p != "" {
		tl.cli = p // measure a binary built elsewhere (another commit)
	} else {
		goBuild(t, root, tl.cli, "./cmd/tofu-oci-mirror")
	}
	goBuild(t, root, tl.floor, "./bench/floor")
	if !allExist(tl.registry, tl.oras, tl.regct) {
		cmd := exec.Command(filepath.Join(root, "scripts", "build-test-tools.sh"), "bench")
		cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("scripts/build-test-tools.sh bench: %v", err)
		}
	}
	return tl
}

func allExist(paths ...string) bool {
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			return false
		}
	}
	return true
}

func goBuild(t testing.TB, root, out, pkg string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
}

// freePort returns a port nothing listens on right now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// registryProc is the CNCF distribution registry running as a separate
// process on a fixed port, with filesystem storage under dir/data.
type registryProc struct {
	bin, dir string
	data     string // the storage's rootdirectory (see registryStorage)
	Host     string // 127.0.0.1:PORT
	cmd      *exec.Cmd
	exited   chan struct{}
}

func newRegistry(t testing.TB, bin, dir string) *registryProc {
	t.Helper()
	r := &registryProc{bin: bin, dir: dir, Host: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r.data = registryStorage(t, dir)
	// The shipped example configuration (cmd/registry/config-example.yml)
	// without auth, quiet, on loopback.
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: %s
  tag:
    concurrencylimit: 8
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
`, r.data, r.Host)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.stop(t) })
	r.start(t)
	return r
}

func (r *registryProc) start(t testing.TB) {
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(r.dir, "registry.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	r.cmd = exec.Command(r.bin, "serve", filepath.Join(r.dir, "config.yml"))
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	if err := r.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("starting the registry: %v", err)
	}
	r.exited = make(chan struct{})
	go func() {
		_ = r.cmd.Wait()
		logf.Close()
		close(r.exited)
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + r.Host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-r.exited:
			t.Fatalf("the registry exited at start; see %s", filepath.Join(r.dir, "registry.log"))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the registry at %s did not answer within 15s: %v", r.Host, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *registryProc) stop(t testing.TB) {
	t.Helper()
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.exited
	r.cmd = nil
}

// reset gives an empty registry on the same address.
// registryStorage is where a registry process keeps its blobs: under
// $BENCH_REGISTRY_DIR, else on tmpfs (/dev/shm) where there is one, else
// in dir. Each measured run deletes the last run's storage first; on this
// machine's ext4 the next run's file creation then got slower run after
// run (the same upload floor took 3.35 s, then 4.83 s, and 9.45 s right
// after another run), which measured the disk rather than the tools.
func registryStorage(t testing.TB, dir string) string {
	t.Helper()
	root := os.Getenv("BENCH_REGISTRY_DIR")
	if root == "" {
		if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
			root = "/dev/shm"
		} else {
			return filepath.Join(dir, "data")
		}
	}
	d, err := os.MkdirTemp(root, "tofu-oci-mirror-bench-")
	if err != nil {
		t.Fatalf("registry storage: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return filepath.Join(d, "data")
}

func (r *registryProc) reset(t testing.TB) {
	t.Helper()
	r.stop(t)
	if err := os.RemoveAll(r.data); err != nil {
		t.Fatal(err)
	}
	r.start(t)
}

// cpu is the registry process's user+system time so far, from
// /proc/PID/stat (in clock ticks of 1/100 s, USER_HZ on Linux).
func (r *registryProc) cpu() time.Duration {
	if r.cmd == nil || r.cmd.Process == nil {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", r.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name; utime and stime are
	// fields 14 and 15 of the whole line.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	f := strings.Fields(s)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// diskUsage is the size of the registry's storage in bytes.
func (r *registryProc) diskUsage() int64 {
	var n int64
	_ = filepath.Walk(r.data, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// registryCounts are the requests a countingProxy passed on, by kind.
type registryCounts struct {
	Ping, TagList, ManifestGet, ManifestHead, ManifestPut, BlobHead, BlobGet, BlobUpload, Referrers, Other, Total int
}

var (
	uploadPath   = regexp.MustCompile(`^/v2/.+/blobs/uploads/`)
	blobPath     = regexp.MustCompile(`^/v2/.+/blobs/[^/]+$`)
	manifestPath = regexp.MustCompile(`^/v2/.+/manifests/[^/]+$`)
	tagListPath  = regexp.MustCompile(`^/v2/.+/tags/list$`)
	referrerPath = regexp.MustCompile(`^/v2/.+/referrers/[^/]+$`)
)

// countingProxy sits in front of the registry process, which cannot count
// for us, and counts each request by kind.
type countingProxy struct {
	Host string
	mu   sync.Mutex
	c    registryCounts
}

// newCountingProxy counts the requests it passes to the registry. With
// keepHost false it tells the registry its own address as Host, so the
// upload locations the registry builds from it lead past the proxy (PATCH
// and PUT of uploads go uncounted); with keepHost true the client's Host
// goes through and so do the uploads, which then count as BlobUpload too.
func newCountingProxy(t testing.TB, registryHost string, keepHost bool) *countingProxy {
	t.Helper()
	p := &countingProxy{}
	target := &url.URL{Scheme: "http", Host: registryHost}
	rp := httputil.NewSingleHostReverseProxy(target)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	rp.Transport = tr
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.count(r)
		// The registry builds absolute upload locations from Host.
		if !keepHost {
			r.Host = registryHost
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.Host = strings.TrimPrefix(srv.URL, "http://")
	return p
}

func (p *countingProxy) count(r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := &p.c
	c.Total++
	path := r.URL.Path
	switch {
	case path == "/v2/" || path == "/v2":
		c.Ping++
	case uploadPath.MatchString(path):
		c.BlobUpload++
	case tagListPath.MatchString(path):
		c.TagList++
	case referrerPath.MatchString(path):
		c.Referrers++
	case manifestPath.MatchString(path):
		switch r.Method {
		case http.MethodGet:
			c.ManifestGet++
		case http.MethodHead:
			c.ManifestHead++
		case http.MethodPut:
			c.ManifestPut++
		default:
			c.Other++
		}
	case blobPath.MatchString(path):
		switch r.Method {
		case http.MethodGet:
			c.BlobGet++
		case http.MethodHead:
			c.BlobHead++
		default:
			c.Other++
		}
	default:
		c.Other++
	}
}

func (p *countingProxy) counts() registryCounts {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.c
}

func (p *countingProxy) resetCounts() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.c = registryCounts{}
}

// measurement is one process run: its wall time, peak RSS and the CPU time
// it and the servers it talked to spent.
type measurement struct {
	Wall   time.Duration
	MaxRSS int64 // bytes; for a script, the largest process it ran
	// CPU is the process's user+system time (with a script's, all its
	// children's); RegistryCPU the registry process's and UpstreamCPU this
	// test process's (the test upstream, serving) over the same interval.
	CPU, RegistryCPU, UpstreamCPU time.Duration
	Stdout                        string
}

// timeBin is GNU time, which measures a child's peak RSS correctly; see
// execute.
const timeBin = "/usr/bin/time"

// execute runs a command and measures it. The command's stderr and stdout
// go to logPath as well (appended), so a failure can be read afterwards.
//
// Peak RSS comes from /usr/bin/time -f %M when it exists. Go's own
// rusage of the child is no good: os/exec starts children with
// clone(CLONE_VM|CLONE_VFORK), and Linux carries the parent's high-water
// RSS into the child's ru_maxrss at exec, so every child would report at
// least the benchmark process's peak. Without /usr/bin/time the child's
// VmHWM is polled from /proc (a high-water mark, so only growth in the last
// 10 ms before exit can be missed; for a script only the shell is seen).
func execute(t testing.TB, logPath string, env []string, name string, args ...string) measurement {
	t.Helper()
	var out bytes.Buffer
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "\n$ %s %s\n", name, strings.Join(args, " "))
	rssFile := ""
	argv := append([]string{name}, args...)
	if _, err := os.Stat(timeBin); err == nil {
		f, err := os.CreateTemp("", "bench-rss-*")
		if err != nil {
			t.Fatal(err)
		}
		rssFile = f.Name()
		f.Close()
		defer os.Remove(rssFile)
		argv = append([]string{timeBin, "-f", "%M", "-o", rssFile, "--"}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = io.MultiWriter(&out, logf)
	cmd.Stderr = logf
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var polled int64
	stopPoll := make(chan struct{})
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		if rssFile != "" {
			return
		}
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			polled = max(polled, vmHWM(cmd.Process.Pid))
			select {
			case <-stopPoll:
				return
			case <-tick.C:
			}
		}
	}()
	err = cmd.Wait()
	wall := time.Since(start)
	close(stopPoll)
	<-pollDone
	if err != nil {
		t.Fatalf("%s %s: %v (log: %s)\n%s", filepath.Base(name), strings.Join(args, " "), err, logPath, tail(logPath))
	}
	m := measurement{Wall: wall, Stdout: out.String(), MaxRSS: polled}
	if rssFile != "" {
		b, err := os.ReadFile(rssFile)
		if err != nil {
			t.Fatal(err)
		}
		fields := strings.Fields(string(b))
		if len(fields) == 0 {
			t.Fatalf("%s wrote no peak RSS for %s", timeBin, name)
		}
		kib, err := strconv.ParseInt(fields[len(fields)-1], 10, 64)
		if err != nil {
			t.Fatalf("%s: peak RSS %q: %v", timeBin, b, err)
		}
		m.MaxRSS = kib << 10
	}
	// With /usr/bin/time in between, its rusage includes the command's.
	m.CPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return m
}

// vmHWM is a process's peak resident set size in bytes so far, from
// /proc/PID/status; 0 once it has gone.
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				kib, _ := strconv.ParseInt(f[0], 10, 64)
				return kib << 10
			}
		}
	}
	return 0
}

// selfCPU is this process's user+system time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// tail returns the end of a log file for failure messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// expectExit runs a command that must exit with code want.
func expectExit(t testing.TB, want int, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	out, err := cmd.CombinedOutput()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if code != want {
		t.Fatalf("%s %s: exit %d, want %d\n%s", filepath.Base(name), strings.Join(args, " "), code, want, out)
	}
	return string(out)
}

// machine describes where the numbers come from.
type machine struct {
	CPUs      int
	CPUModel  string
	GoVersion string
	Kernel    string
	MemTotal  string
	LoadStart string
	LoadEnd   string
	Commit    string
}

func describeMachine(root string) machine {
	m := machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), LoadStart: loadAverage()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "MemTotal:") {
				m.MemTotal = strings.Join(strings.Fields(strings.TrimPrefix(line, "MemTotal:")), " ")
			}
		}
	}
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		m.Kernel = strings.TrimSpace(string(out))
	}
	cmd := exec.Command("git", "describe", "--always", "--dirty")
	cmd.Dir = root
	if out, err := cmd.Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
	}
	return m
}

// loadAverage is the first three fields of /proc/loadavg.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// median is the middle value, or the mean of the two middle ones.
func median[T time.Duration | float64](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
