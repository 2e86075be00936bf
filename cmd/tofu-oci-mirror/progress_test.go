package main

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"
)

// twoVersionTotal is what the engine announces for a plan of 1.0.0
// (missing, two platforms), 1.1.0 (incomplete, one platform to add) and a
// complete 0.9.0.
func twoVersionTotal() *item.Total {
	return &item.Total{Packages: 3, Items: []item.Planned{
		{Address: "registry.opentofu.org/acme/heavy", Version: "1.0.0", Packages: 2},
		{Address: "registry.opentofu.org/acme/heavy", Version: "1.1.0", Packages: 1},
	}}
}

// TestTrackerCountsAndETA follows a run from the plan to the last item:
// the total comes from the plan, the bytes total is an estimate until
// every size is known, the ETA waits for etaAfter, a discarded attempt
// takes its bytes back, and platforms that needed no download still count
// once their item ends.
func TestTrackerCountsAndETA(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tr := newTracker("Syncing", "planning", t0)
	status := func(now time.Time) string { return tr.frame(now, 200, 20, "⠋")[0] }
	if s := status(t0); s != "⠋ Syncing · planning · 0s elapsed" {
		t.Fatalf("before the plan: %q", s)
	}
	tr.handle(item.Event{Total: twoVersionTotal()}, t0)
	if s := status(t0); !strings.Contains(s, "0/3 packages") || !strings.Contains(s, "ETA estimating") {
		t.Fatalf("start: %q", s)
	}
	const mib = 1 << 20
	a := &item.Package{Address: "registry.opentofu.org/acme/heavy", Version: "1.0.0", Name: "linux_amd64", Size: 100 * mib}
	tr.handle(item.Event{Package: a}, t0)
	tr.handle(item.Event{Package: a, Bytes: 30 * mib}, t0.Add(500*time.Millisecond))
	tr.handle(item.Event{Package: a, Bytes: -30 * mib}, t0.Add(600*time.Millisecond)) // a retry starts again
	for i := 1; i <= 10; i++ {
		tr.handle(item.Event{Package: a, Bytes: 10 * mib}, t0.Add(time.Duration(600+100*i)*time.Millisecond))
	}
	// One of three packages started, 100 MiB: the others are guessed alike.
	s := status(t0.Add(1700 * time.Millisecond))
	if !strings.Contains(s, "100.0 MiB of ~300.0 MiB") || !strings.Contains(s, "ETA estimating") {
		t.Fatalf("first package downloaded: %q", s)
	}
	lines := tr.frame(t0.Add(1700*time.Millisecond), 200, 20, "⠋")
	if len(lines) != 2 || !strings.Contains(lines[1], "1.0.0 linux_amd64 [====================] 100%  100.0 MiB of 100.0 MiB") {
		t.Fatalf("package line: %q", lines)
	}
	tr.handle(item.Event{Package: &item.Package{Address: a.Address, Version: a.Version, Name: a.Name, Done: true}}, t0.Add(1800*time.Millisecond))
	b := &item.Package{Address: a.Address, Version: "1.1.0", Name: "linux_amd64", Size: 50 * mib}
	tr.handle(item.Event{Package: b}, t0.Add(1800*time.Millisecond))
	for i := 1; i <= 10; i++ {
		tr.handle(item.Event{Package: b, Bytes: 2 * mib}, t0.Add(time.Duration(1800+100*i)*time.Millisecond))
	}
	s = status(t0.Add(2800 * time.Millisecond))
	if !strings.Contains(s, "1/3 packages") || !strings.Contains(s, "120.0 MiB of ~225.0 MiB") || !regexp.MustCompile(`ETA \d+s`).MatchString(s) {
		t.Fatalf("after 2.8 s: %q", s)
	}
	// darwin_arm64 was already in the target: no download, the item's end counts it.
	tr.handle(item.Event{Item: &item.Result{Address: a.Address, Version: "1.0.0", State: item.Done}}, t0.Add(3*time.Second))
	tr.handle(item.Event{Package: &item.Package{Address: b.Address, Version: b.Version, Name: b.Name, Done: true}}, t0.Add(3*time.Second))
	tr.handle(item.Event{Item: &item.Result{Address: a.Address, Version: "1.1.0", State: item.Failed}}, t0.Add(3*time.Second))
	lines = tr.frame(t0.Add(3*time.Second), 200, 20, "⠋")
	if len(lines) != 1 || !strings.Contains(lines[0], "3/3 packages") || strings.Contains(lines[0], "ETA") || !strings.Contains(lines[0], "· 1 failed ·") {
		t.Fatalf("end: %q", lines)
	}
}

// TestTrackerImportTotal: an import announces its packages and bytes, so
// the total is exact (no "~") from the start.
func TestTrackerImportTotal(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tr := newTracker("Importing", "reading the bundle", t0)
	tr.handle(item.Event{Total: &item.Total{Packages: 2, Bytes: 6 << 20}}, t0)
	p := &item.Package{Address: "registry.opentofu.org/acme/heavy", Version: "1.0.0", Name: "0123456789ab", Size: 3 << 20}
	tr.handle(item.Event{Package: p}, t0)
	tr.handle(item.Event{Package: p, Bytes: 3 << 20}, t0.Add(time.Second))
	tr.handle(item.Event{Package: &item.Package{Address: p.Address, Version: p.Version, Name: p.Name, Done: true}}, t0.Add(time.Second))
	s := tr.frame(t0.Add(time.Second), 200, 20, "⠋")[0]
	if !strings.Contains(s, "Importing 1/2 packages · 3.0 MiB of 6.0 MiB") {
		t.Fatalf("%q", s)
	}
}

// TestFrameFitsWidth: no display line reaches the last column, so the
// terminal never wraps one and the redraw's line count stays right.
func TestFrameFitsWidth(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tr := newTracker("Syncing", "planning", t0)
	tr.handle(item.Event{Total: twoVersionTotal()}, t0)
	for _, name := range []string{"linux_amd64", "darwin_arm64"} {
		tr.handle(item.Event{Package: &item.Package{Address: "registry.opentofu.org/averyveryverylongnamespace/averyveryverylongprovidername", Version: "1.0.0", Name: name, Size: 200 << 20}}, t0)
	}
	for _, width := range []int{40, 60, 80} {
		for _, l := range tr.frame(t0.Add(time.Second), width, 24, "⠋") {
			if n := len([]rune(l)); n >= width {
				t.Errorf("width %d: %d runes: %q", width, n, l)
			}
		}
	}
}

func TestHumanLogFormat(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(newHumanHandler(&buf, slog.LevelInfo, false))
	logItem(l, &item.Result{Kind: "provider", Address: "registry.opentofu.org/acme/heavy", Version: "1.0.0", State: item.Done,
		Platforms: []string{"a", "b", "c", "d"}, Uploaded: 120061952, Warnings: []string{"linux_386: upstream no longer offers this platform"}}, "copied")
	logItem(l, &item.Result{Kind: "provider", Address: "registry.opentofu.org/acme/gone", Version: "2.0.0", State: item.Failed,
		Err: errors.Join(errors.New("provider registry.opentofu.org/acme/gone 2.0.0 linux_amd64: checksum mismatch"), errors.New("provider registry.opentofu.org/acme/gone 2.0.0 darwin_arm64: checksum mismatch"))}, "copied")
	l.Info("plan", "target", "registry.example.com/mirror", "pending", 3)
	l.Debug("hidden")
	l.Info("imported", "kind", "provider") // the engine's echo of an item logItem prints
	want := `! warning: registry.opentofu.org/acme/heavy 1.0.0: linux_386: upstream no longer offers this platform
✓ copied registry.opentofu.org/acme/heavy 1.0.0: 4 platforms, 114.5 MiB
✗ error: provider registry.opentofu.org/acme/gone 2.0.0 linux_amd64: checksum mismatch
  provider registry.opentofu.org/acme/gone 2.0.0 darwin_arm64: checksum mismatch
plan target=registry.example.com/mirror pending=3
`
	if buf.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", buf.String(), want)
	}

	buf.Reset()
	l = slog.New(newHumanHandler(&buf, slog.LevelInfo, true))
	l.Warn("slow")
	l.Error("broken")
	if got := buf.String(); got != "\x1b[33m\x1b[1m! warning: \x1b[0m\x1b[33mslow\x1b[0m\n\x1b[31m\x1b[1m✗ error: \x1b[0m\x1b[31mbroken\x1b[0m\n" {
		t.Errorf("colours: %q", got)
	}
}

func TestUnknownCommand(t *testing.T) {
	for _, args := range [][]string{{"lokc"}, {"snyc", "-c", "x.yaml"}, {"help", "snyc"}} {
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), append([]string{"tofu-oci-mirror"}, args...), &stdout, &stderr)
		if code != exitFailed {
			t.Errorf("%v: exit %d, want %d", args, code, exitFailed)
		}
		name := args[0]
		if name == "help" {
			name = args[1]
		}
		msg := stderr.String()
		if !strings.Contains(msg, `unknown command "`+name+`"; did you mean "`) ||
			!strings.Contains(msg, "commands: plan, sync, verify, doctor, tofurc, inventory, export, import, lock, scan, keys, prune, version") || strings.Contains(msg, "No help topic") {
			t.Errorf("%v: %q", args, msg)
		}
		if want := map[string]string{"snyc": "sync", "lokc": "lock"}[name]; want != "" && !strings.Contains(msg, `did you mean "`+want+`"?`) {
			t.Errorf("%v: %q", args, msg)
		}
	}
	// A subcommand too: keys has only export.
	for _, args := range [][]string{{"keys", "exprot", "dir"}, {"help", "keys", "exprot"}} {
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), append([]string{"tofu-oci-mirror"}, args...), &stdout, &stderr)
		msg := stderr.String()
		if code != exitFailed || msg != "tofu-oci-mirror: unknown command \"keys exprot\"; did you mean \"keys export\"?\ncommands: export (tofu-oci-mirror keys --help tells more)\n" {
			t.Errorf("%v: exit %d: %q", args, code, msg)
		}
	}
	// Known commands and their arguments are left to the command.
	for _, args := range [][]string{{"keys"}, {"help", "keys"}, {"keys", "export", "--help"}, {"help"}} {
		var stdout, stderr bytes.Buffer
		if code := run(t.Context(), append([]string{"tofu-oci-mirror"}, args...), &stdout, &stderr); code != exitOK || strings.Contains(stderr.String(), "unknown command") {
			t.Errorf("%v: exit %d: %q", args, code, stderr.String())
		}
	}
}

// TestHelpShowsExample: every command's --help, and every subcommand's
// ("keys export"), shows an example of that command.
func TestHelpShowsExample(t *testing.T) {
	app := newApp(nil, nil)
	var lines [][]string
	for _, c := range app.Commands {
		lines = append(lines, []string{c.Name})
		for _, sub := range c.Subcommands {
			lines = append(lines, []string{c.Name, sub.Name})
		}
	}
	if !slices.ContainsFunc(lines, func(l []string) bool { return strings.Join(l, " ") == "keys export" }) {
		t.Fatalf("no keys export among %q", lines)
	}
	for _, l := range lines {
		name := strings.Join(l, " ")
		var stdout, stderr bytes.Buffer
		args := append(append([]string{"tofu-oci-mirror"}, l...), "--help")
		if code := run(t.Context(), args, &stdout, &stderr); code != exitOK {
			t.Fatalf("%s --help: exit %d: %s", name, code, stderr.String())
		}
		if !strings.Contains(stdout.String(), "EXAMPLE:\n   tofu-oci-mirror "+name) {
			t.Errorf("%s --help has no example:\n%s", name, stdout.String())
		}
	}
}

// TestSummaryDurationCoversTheRun: upstream answers 503 with Retry-After
// to the first versions request; the summary counts that wait.
func TestSummaryDurationCoversTheRun(t *testing.T) {
	e := newCLIEnv(t)
	e.up.AddProvider("acme", "widget", "1.0.0", "linux_amd64")
	e.writePlan(e.reg.Host, "platforms: [linux_amd64]\nproviders:\n  - source: acme/widget\n    versions: \"1.0.0\"\n")
	e.up.FailNext("/v1/providers/acme/widget/versions", 1, http.StatusServiceUnavailable, "2")
	start := time.Now()
	out, _ := e.mustRun(exitOK, "sync", "-c", e.plan, "--no-progress")
	took := time.Since(start)
	m := regexp.MustCompile(` in ([0-9.]+m?s)\.`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no duration: %q", out)
	}
	d, err := time.ParseDuration(m[1])
	if err != nil {
		t.Fatal(err)
	}
	if took < 2*time.Second || d < 2*time.Second || d > took+time.Millisecond { // the summary rounds to ms
		t.Errorf("the run took %s (2 s of it waiting to retry), the summary says %s: %q", took, d, out)
	}
}

// TestTrackerUploadBound: downloads finish long before the slower uploads;
// the status counts what reached the target, the ETA follows the uploads
// and the package line says it is uploading.
func TestTrackerUploadBound(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tr := newTracker("Syncing", "planning", t0)
	tr.handle(item.Event{Total: &item.Total{Packages: 1, Items: []item.Planned{
		{Address: "registry.opentofu.org/acme/heavy", Version: "1.0.0", Packages: 1}}}}, t0)
	const mib = 1 << 20
	p := &item.Package{Address: "registry.opentofu.org/acme/heavy", Version: "1.0.0", Name: "linux_amd64", Size: 100 * mib}
	tr.handle(item.Event{Package: p}, t0)
	tr.handle(item.Event{Package: p, Bytes: 100 * mib}, t0.Add(100*time.Millisecond))
	// Uploads at 10 MiB/s: 30 MiB after 3 s.
	for i := 1; i <= 30; i++ {
		at := t0.Add(100*time.Millisecond + time.Duration(i)*100*time.Millisecond)
		tr.handle(item.Event{Package: p, Uploaded: mib}, at)
		tr.frame(at, 200, 20, "⠋") // the display draws every 100 ms
	}
	lines := tr.frame(t0.Add(3100*time.Millisecond), 200, 20, "⠋")
	if !strings.Contains(lines[0], "30.0 MiB of 100.0 MiB") || !regexp.MustCompile(`ETA [67]s`).MatchString(lines[0]) {
		t.Errorf("status: %q", lines[0])
	}
	if len(lines) != 2 || !strings.Contains(lines[1], "uploading  30%  30.0 MiB of 100.0 MiB") {
		t.Errorf("package line: %q", lines)
	}
}
