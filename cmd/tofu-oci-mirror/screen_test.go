package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	gosync "sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/hinshun/vt10x"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testpgp"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testupstream"
)

// The screen tests run the real binary, under a pseudo-terminal or with
// plain pipes, and read what a person (or cron's mail) would see.

const (
	screenCols = 120
	screenRows = 30
	// testBinEnv names a binary to run instead of building this tree's:
	// with updateGoldenEnv=1 and the binary of an earlier commit, it records
	// that commit's cron output as the golden file.
	testBinEnv      = "TOFU_OCI_MIRROR_TEST_BIN"
	updateGoldenEnv = "TOFU_OCI_MIRROR_UPDATE_GOLDEN"
	// captureEnv names a file to write the screen midway through the large sync to.
	captureEnv = "TOFU_OCI_MIRROR_SCREEN_CAPTURE"
	// screenSizeEnv sets the package size of TestTerminalSyncScreen (default 8 MiB),
	// screenRateEnv the registry's upload rate in bytes/s (default 32 MiB/s).
	screenSizeEnv = "TOFU_OCI_MIRROR_SCREEN_PACKAGE_SIZE"
	screenRateEnv = "TOFU_OCI_MIRROR_SCREEN_RATE"
)

var (
	binOnce gosync.Once
	binPath string
	binErr  error
)

// TestMain removes the binary cliBinary built.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// cliBinary builds the command once per test process.
func cliBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(testBinEnv); p != "" {
		return p
	}
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tofu-oci-mirror-bin-*")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "tofu-oci-mirror")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// throttle limits the bytes per second of every request body it wraps,
// all requests together, so a sync of a few packages lasts long enough
// to be watched.
type throttle struct {
	mu      gosync.Mutex
	next    time.Time
	perByte time.Duration
}

func (th *throttle) middleware(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && (r.Method == http.MethodPut || r.Method == http.MethodPatch || r.Method == http.MethodPost) {
			r.Body = &throttledBody{ReadCloser: r.Body, th: th}
		}
		h.ServeHTTP(w, r)
	})
}

type throttledBody struct {
	io.ReadCloser
	th *throttle
}

func (b *throttledBody) Read(p []byte) (int, error) {
	if len(p) > 256<<10 {
		p = p[:256<<10]
	}
	n, err := b.ReadCloser.Read(p)
	b.th.mu.Lock()
	now := time.Now()
	if b.th.next.Before(now) {
		b.th.next = now
	}
	b.th.next = b.th.next.Add(time.Duration(n) * b.th.perByte)
	wait := b.th.next.Sub(now)
	b.th.mu.Unlock()
	time.Sleep(wait)
	return n, err
}

// newScreenWorld is a cliEnv with versions x 4 platforms of size bytes
// each upstream, a registry taking uploads at bytesPerSecond (0:
// unthrottled), and a plan naming them, trusting its own bundle key.
func newScreenWorld(t *testing.T, versions int, size, bytesPerSecond int64) *cliEnv {
	t.Helper()
	return newScreenWorldTrusting(t, versions, size, bytesPerSecond, nil)
}

// newScreenWorldTrusting is newScreenWorld whose plan trusts key's
// bundles (nil: a key of its own).
func newScreenWorldTrusting(t *testing.T, versions int, size, bytesPerSecond int64, key *testpgp.Key) *cliEnv {
	t.Helper()
	// Not t.TempDir: an upload cancelled by TestTerminalInterrupt may still
	// be writing when the test ends, and that must not fail the cleanup.
	storage, err := os.MkdirTemp("", "tofu-oci-mirror-registry-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(storage) }) // runs after the registry stopped
	opts := []testregistry.Option{testregistry.WithFilesystem(storage)}
	if bytesPerSecond > 0 {
		th := &throttle{perByte: time.Second / time.Duration(bytesPerSecond)}
		opts = append(opts, testregistry.WithMiddleware(th.middleware))
	}
	w := &cliEnv{t: t, up: testupstream.New(t, testupstream.WithPackageSize(size)), reg: testregistry.New(t, opts...), dir: t.TempDir()}
	platforms := []string{"linux_amd64", "linux_arm64", "darwin_arm64", "windows_amd64"}
	for v := 0; v < versions; v++ {
		w.up.AddProvider("acme", "heavy", fmt.Sprintf("1.%d.0", v), platforms...)
	}
	w.plan = filepath.Join(w.dir, "mirror.yaml")
	w.key = key
	if w.key == nil {
		w.key = testpgp.New(t, "bundle signer", "").Write(t, w.dir, "bundle-signer")
	}
	w.writePlan(w.reg.Host, "platforms: ["+strings.Join(platforms, ", ")+"]\nproviders:\n  - source: acme/heavy\n    versions: \">= 1.0.0\"\n")
	return w
}

// runPTY runs the binary with stdout and stderr on a pseudo-terminal of
// screenCols x screenRows and returns everything it wrote and its exit code.
func runPTY(t *testing.T, env []string, args ...string) ([]byte, int) {
	t.Helper()
	return runPTYWatching(t, env, nil, args...)
}

// isolatedEnv is this process's environment without what would bring the
// machine's own OpenTofu CLI configuration, tokens or registry
// credentials into a run of the binary (CI machines set
// TF_CLI_CONFIG_FILE, for one), and with a HOME of its own.
func isolatedEnv(t *testing.T) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "TF_CLI_CONFIG_FILE", k == "DOCKER_CONFIG", k == "REGISTRY_AUTH_FILE", k == "HOME", k == "NETRC",
			strings.HasPrefix(k, "TF_TOKEN_"), k == "XDG_RUNTIME_DIR", k == "XDG_CONFIG_HOME":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+t.TempDir())
}

// runPTYWatching is runPTY calling watch with the process and all output
// so far after each read.
func runPTYWatching(t *testing.T, env []string, watch func(*os.Process, []byte), args ...string) ([]byte, int) {
	t.Helper()
	cmd := exec.Command(cliBinary(t), args...)
	cmd.Env = append(isolatedEnv(t), env...)
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: screenCols, Rows: screenRows})
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	var out bytes.Buffer
	buf := make([]byte, 32<<10)
	for {
		n, rerr := ptmx.Read(buf)
		out.Write(buf[:n])
		if watch != nil && n > 0 {
			watch(cmd.Process, out.Bytes())
		}
		if rerr != nil {
			err = rerr
			break
		}
	}
	// Linux reports EIO on the master once the child closed the terminal.
	if err != nil && !errors.Is(err, syscall.EIO) && err != io.EOF {
		t.Fatal(err)
	}
	code := 0
	if err := cmd.Wait(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatal(err)
		}
		code = ee.ExitCode()
	}
	return out.Bytes(), code
}

// displayClear is what the display writes before each redraw and at the end.
const displayClear = "\r\x1b[J"

// replay renders a recording in a terminal emulator and returns the
// screen just before each clear of the display (so every frame drawn,
// with the log lines above it) and the final screen.
func replay(rec []byte) (frames []string, final string) { return replayRows(rec, screenRows) }

// replayRows is replay on an emulator of rows lines, so that nothing
// scrolls off a long output.
func replayRows(rec []byte, rows int) (frames []string, final string) {
	vt := vt10x.New(vt10x.WithSize(screenCols, rows))
	rest := rec
	for {
		i := bytes.Index(rest, []byte(displayClear))
		if i < 0 {
			_, _ = vt.Write(rest)
			return frames, vt.String()
		}
		_, _ = vt.Write(rest[:i])
		frames = append(frames, vt.String())
		_, _ = vt.Write(rest[i : i+len(displayClear)])
		rest = rest[i+len(displayClear):]
	}
}

func screenLines(screen string) []string {
	var out []string
	for _, l := range strings.Split(screen, "\n") {
		out = append(out, strings.TrimRight(l, " "))
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

// sgrRe matches a colour or style escape (cursor movement does not count).
var sgrRe = regexp.MustCompile("\x1b\\[[0-9;]*m")

var statusRe = regexp.MustCompile(`^[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] Syncing (\d+)/(\d+) packages`)

// TestTerminalSyncScreen syncs 3 versions x 4 platforms of 8 MiB packages
// under a pseudo-terminal and checks what the screen shows: a status
// line that no log line ever gets into, per-package lines, counts that
// reach the total, and at the end no display, the readable log lines and
// the summary as the last line.
func TestTerminalSyncScreen(t *testing.T) {
	size, rate := envInt(t, screenSizeEnv, 8<<20), envInt(t, screenRateEnv, 32<<20)
	w := newScreenWorld(t, 3, size, rate)
	rec, code := runPTY(t, []string{"TERM=xterm-256color", "NO_COLOR="}, "sync", "-c", w.plan, "--concurrency", "4")
	frames, final := replay(rec)
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, final)
	}
	var sawStatus, sawPackageLine, sawEstimating, sawETA bool
	lastCount := ""
	var midway string
	midwayScore := 0
	for _, f := range frames {
		for _, l := range screenLines(f) {
			if m := statusRe.FindStringSubmatch(l); m != nil {
				sawStatus = true
				lastCount = m[1] + "/" + m[2]
				// The capture: a frame with a version already copied above
				// and as many packages in flight as possible.
				done, _ := strconv.Atoi(m[1])
				score := strings.Count(f, "% ")
				if strings.Contains(f, "✓ copied") {
					score += 10
				}
				if done > 0 && score > midwayScore {
					midway, midwayScore = f, score
				}
				if strings.Contains(l, "ETA estimating") {
					sawEstimating = true
				} else if strings.Contains(l, "ETA ") {
					sawETA = true
				}
				for _, logText := range []string{"copied", "✓", "level=", "msg=", "plan:"} {
					if strings.Contains(l, logText) {
						t.Errorf("log text %q inside the status line: %q\nframe:\n%s", logText, l, f)
					}
				}
			}
			if strings.Contains(l, "copied") && !strings.HasPrefix(l, "✓ copied registry.opentofu.org/acme/heavy 1.") {
				t.Errorf("a log line was broken up by the display: %q\nframe:\n%s", l, f)
			}
			if strings.HasPrefix(l, "  registry.opentofu.org/acme/heavy 1.") && strings.Contains(l, "%") {
				sawPackageLine = true
			}
		}
	}
	if !sawStatus || !sawPackageLine || !sawEstimating {
		t.Fatalf("frames: status %v, package lines %v, estimating %v; %d frames; final:\n%s", sawStatus, sawPackageLine, sawEstimating, len(frames), final)
	}
	if !sawETA {
		t.Errorf("no frame showed an ETA")
	}
	if lastCount != "12/12" {
		t.Errorf("last frame counted %s packages, want 12/12", lastCount)
	}
	lines := screenLines(final)
	if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], "Sync: 3 copied, 0 unchanged, 0 failed, 0 conflicts; "+humanBytes(12*size)+" downloaded") {
		t.Fatalf("last line is not the summary:\n%s", final)
	}
	copied := 0
	for _, l := range lines[:len(lines)-1] {
		if statusRe.MatchString(l) || strings.Contains(l, "%") {
			t.Errorf("the display was not cleared: %q\n%s", l, final)
		}
		if regexp.MustCompile(`^✓ copied registry\.opentofu\.org/acme/heavy 1\.[0-2]\.0: 4 platforms, ` + regexp.QuoteMeta(humanBytes(4*size)) + `$`).MatchString(l) {
			copied++
		}
	}
	if copied != 3 {
		t.Errorf("%d readable copied lines, want 3:\n%s", copied, final)
	}
	if midway == "" {
		midway = frames[len(frames)/2]
	}
	t.Logf("screen midway:\n%s", strings.Join(screenLines(midway), "\n"))
	if p := os.Getenv(captureEnv); p != "" {
		_ = os.WriteFile(p, []byte(strings.Join(screenLines(midway), "\n")+"\n\n--- final screen ---\n"+strings.Join(lines, "\n")+"\n"), 0o644)
	}
}

// TestTerminalEnvironment checks the switches people expect on a terminal.
func TestTerminalEnvironment(t *testing.T) {
	cases := []struct {
		name        string
		env         []string
		args        []string
		display     bool // the display is drawn (it clears itself with displayClear)
		color       bool // SGR colour codes appear
		escapes     bool // any escape sequence at all
		humanFormat bool
	}{
		{name: "default", env: []string{"TERM=xterm-256color", "NO_COLOR="}, display: true, color: true, escapes: true, humanFormat: true},
		{name: "NO_COLOR", env: []string{"TERM=xterm-256color", "NO_COLOR=1"}, display: true, escapes: true, humanFormat: true},
		{name: "TERM=dumb", env: []string{"TERM=dumb", "NO_COLOR="}, humanFormat: true},
		{name: "no-progress", env: []string{"TERM=xterm-256color", "NO_COLOR=1"}, args: []string{"--no-progress"}, humanFormat: true},
		{name: "log-format text", env: []string{"TERM=xterm-256color", "NO_COLOR=1"}, args: []string{"--no-progress", "--log-format", "text"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newScreenWorld(t, 1, 2<<20, 8<<20)
			rec, code := runPTY(t, tc.env, append([]string{"sync", "-c", w.plan}, tc.args...)...)
			out := string(rec)
			if code != exitOK {
				t.Fatalf("exit %d\n%s", code, out)
			}
			if got := strings.Contains(out, displayClear); got != tc.display {
				t.Errorf("display drawn: %v, want %v\n%q", got, tc.display, out)
			}
			if got := sgrRe.MatchString(out); got != tc.color {
				t.Errorf("colour: %v, want %v\n%q", got, tc.color, out)
			}
			if got := strings.Contains(out, "\x1b"); got != tc.escapes {
				t.Errorf("escape sequences: %v, want %v\n%q", got, tc.escapes, out)
			}
			_, final := replay(rec)
			human := strings.Contains(final, "✓ copied registry.opentofu.org/acme/heavy 1.0.0: 4 platforms, 8.0 MiB")
			machine := strings.Contains(out, "level=INFO msg=copied provider=registry.opentofu.org/acme/heavy version=1.0.0 state=done")
			if human != tc.humanFormat || machine == tc.humanFormat {
				t.Errorf("human format %v, text format %v; want human %v:\n%s", human, machine, tc.humanFormat, final)
			}
		})
	}
}

// cronNormalize replaces what differs between any two runs (times,
// durations, ports, temp paths) and sorts the lines: items finish in
// whatever order their transfers end.
func cronNormalize(s string, w *cliEnv) string {
	s = strings.ReplaceAll(s, w.dir, "DIR")
	s = regexp.MustCompile(`time=\S+`).ReplaceAllString(s, "time=T")
	s = regexp.MustCompile(`127\.0\.0\.1:\d+`).ReplaceAllString(s, "127.0.0.1:PORT")
	s = regexp.MustCompile(` in [0-9.]+m?s\.`).ReplaceAllString(s, " in D.")
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n"
}

// TestCronOutputUnchanged runs the same sync without a terminal (as cron
// does) and compares stderr and stdout with testdata/cron-sync.golden,
// recorded from the binary before the terminal display existed.
func TestCronOutputUnchanged(t *testing.T) {
	w := newScreenWorld(t, 3, 1<<20, 0)
	cmd := exec.Command(cliBinary(t), "sync", "-c", w.plan)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(isolatedEnv(t), "TERM=xterm-256color")
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	got := "--- stderr\n" + cronNormalize(stderr.String(), w) + "--- stdout\n" + cronNormalize(stdout.String(), w)
	golden := filepath.Join("testdata", "cron-sync.golden")
	if os.Getenv(updateGoldenEnv) == "1" {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("cron output changed:\n--- got\n%s--- want\n%s", got, want)
	}
	if strings.Contains(stderr.String(), "\x1b") || strings.Contains(stderr.String(), "\r") {
		t.Errorf("terminal control bytes in cron output: %q", stderr.String())
	}
}

// TestTerminalExportImportScreen: export and import draw the same
// display (with their own verb), and end with their summary last.
func TestTerminalExportImportScreen(t *testing.T) {
	w := newScreenWorld(t, 2, 4<<20, 0)
	bundlePath := filepath.Join(w.dir, "bundle.tar")
	rec, code := runPTY(t, []string{"TERM=xterm-256color", "NO_COLOR="}, "export", "-c", w.plan, "-o", bundlePath, "--sign-key", w.key.PrivateFile)
	checkScreen(t, "Exporting", rec, code, "8/8", "Export: 2 artifacts in the bundle")

	inside := newScreenWorldTrusting(t, 0, 0, 32<<20, w.key)
	rec, code = runPTY(t, []string{"TERM=xterm-256color", "NO_COLOR="}, "import", "-c", inside.plan, bundlePath)
	final := checkScreen(t, "Importing", rec, code, "8/8", "Import: 2 copied, 0 unchanged, 0 failed, 0 conflicts")
	if !regexp.MustCompile(`(?m)^✓ imported registry\.opentofu\.org/acme/heavy 1\.0\.0: 16\.0 MiB`).MatchString(final) {
		t.Errorf("no readable imported line:\n%s", final)
	}
}

// checkScreen replays a recording: some frame shows verb's status line,
// the last frame counts want, no log line is inside a status line, and
// the final screen has no display left and ends with summary.
func checkScreen(t *testing.T, verb string, rec []byte, code int, want, summary string) string {
	t.Helper()
	frames, final := replay(rec)
	if code != exitOK {
		t.Fatalf("%s: exit %d\n%s", verb, code, final)
	}
	re := regexp.MustCompile(`^[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] ` + verb + ` (\d+/\d+) packages`)
	last := ""
	for _, f := range frames {
		for _, l := range screenLines(f) {
			if m := re.FindStringSubmatch(l); m != nil {
				last = m[1]
				if strings.Contains(l, "✓") || strings.Contains(l, "msg=") {
					t.Errorf("%s: log text inside the status line: %q", verb, l)
				}
			}
		}
	}
	if last != want {
		t.Errorf("%s: last frame counted %q packages, want %s; %d frames", verb, last, want, len(frames))
	}
	lines := screenLines(final)
	t.Logf("%s: final screen:\n%s", verb, strings.Join(lines, "\n"))
	if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], summary) {
		t.Errorf("%s: last line is not the summary %q:\n%s", verb, summary, final)
	}
	if re.MatchString(final) || strings.Contains(final, "%") {
		t.Errorf("%s: the display was not cleared:\n%s", verb, final)
	}
	return final
}

func envInt(t *testing.T, name string, def int64) int64 {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

// TestTerminalInterrupt: Ctrl-C in the middle of a sync. The signal
// handler's message prints above the display like a log line, and the
// run ends with the display cleared, the summary, and the error.
func TestTerminalInterrupt(t *testing.T) {
	w := newScreenWorld(t, 3, 8<<20, 16<<20)
	sent := false
	rec, code := runPTYWatching(t, []string{"TERM=xterm-256color", "NO_COLOR="}, func(p *os.Process, out []byte) {
		if !sent && bytes.Contains(out, []byte("% ")) {
			sent = true
			_ = p.Signal(os.Interrupt)
		}
	}, "sync", "-c", w.plan)
	frames, final := replayRows(rec, 300)
	if !sent || code != exitFailed {
		t.Fatalf("signal sent %v, exit %d:\n%s", sent, code, final)
	}
	stopping := "tofu-oci-mirror: interrupt: stopping; nothing half-done is tagged"
	for _, f := range frames {
		for _, l := range screenLines(f) {
			if statusRe.MatchString(l) && strings.Contains(l, "stopping") {
				t.Errorf("the signal message is inside the status line: %q", l)
			}
		}
	}
	lines := screenLines(final)
	if !slicesContainsPrefix(lines, stopping) {
		t.Errorf("no intact stopping message:\n%s", final)
	}
	summary := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "Sync: ") {
			summary = i
		}
		if statusRe.MatchString(l) {
			t.Errorf("the display was not cleared: %q", l)
		}
	}
	if summary < 0 || summary+1 >= len(lines) || !strings.HasPrefix(lines[summary+1], "error: ") {
		t.Errorf("want the summary, then the error:\n%s", final)
	}
	t.Logf("final screen:\n%s", strings.Join(lines, "\n"))
}

func slicesContainsPrefix(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// TestTerminalFailureStandsOut: a package whose zip does not match its
// signed checksum fails its version; on the terminal the error line is
// marked and red, the status line counts the failure, and the summary
// and the exit code say so.
func TestTerminalFailureStandsOut(t *testing.T) {
	w := newScreenWorld(t, 2, 2<<20, 8<<20)
	w.up.Tamper("acme", "heavy", "1.1.0", "linux_arm64", testupstream.TamperZip)
	rec, code := runPTY(t, []string{"TERM=xterm-256color", "NO_COLOR="}, "sync", "-c", w.plan)
	frames, final := replayRows(rec, 100)
	if code != exitFailed {
		t.Fatalf("exit %d, want %d:\n%s", code, exitFailed, final)
	}
	if !regexp.MustCompile(`\x1b\[31m\x1b\[1m✗ error: \x1b\[0m\x1b\[31mprovider registry\.opentofu\.org/acme/heavy 1\.1\.0 linux_arm64: [^\r]*checksum`).Match(rec) {
		t.Errorf("the error is not marked in red:\n%q", rec)
	}
	counted := false
	for _, f := range frames {
		for _, l := range screenLines(f) {
			if statusRe.MatchString(l) && strings.Contains(l, "· 1 failed ·") {
				counted = true
			}
		}
	}
	if !counted {
		t.Errorf("no frame counted the failed version")
	}
	if !strings.Contains(final, "✓ copied registry.opentofu.org/acme/heavy 1.0.0: 4 platforms, 8.0 MiB") ||
		!strings.Contains(final, "Sync: 1 copied, 0 unchanged, 1 failed, 0 conflicts") {
		t.Errorf("final screen:\n%s", final)
	}
}
