package main

import (
	"fmt"
	"sort"
	"strings"
	gosync "sync"
	"time"
	"unicode/utf8"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"
)

// largePackage is the size from which a package in flight gets its own
// line: smaller ones finish before a line would be worth reading.
const largePackage = 1 << 20

// etaAfter is how long bytes must have flowed before an ETA is shown; the
// first second of a run (TLS handshakes, the first chunks) says little.
const etaAfter = 2 * time.Second

// tracker is the state behind the progress display, fed by engine events.
// It draws nothing; frame renders it. Safe for concurrent use.
type tracker struct {
	mu      gosync.Mutex
	verb    string // "Syncing", "Exporting", "Importing"
	before  string // shown until the work is announced: "planning"
	start   time.Time
	total   int            // packages the work moves
	planned map[string]int // packages per item ("address version")
	done    map[string]int // packages finished per item
	// exactBytes is set when the total of bytes was announced (an import);
	// otherwise sizes become known as downloads start.
	exactBytes  int64
	knownSizes  int64 // sum of the sizes of packages started so far
	sized       int   // packages started whose size was known
	started     int   // packages started
	got         int64 // bytes downloaded (for an import: read from the bundle)
	up          int64 // bytes uploaded, when the engine reports uploads
	upSeen      bool  // the engine reports uploads: they count as the work done
	firstByte   time.Time
	inFlight    map[string]*flight
	samples     []sample // recent (time, got, up) for the rates
	itemsFailed int      // versions that failed or conflict, shown so a failure is seen at once
	announced   bool     // a Total arrived: the total is known
}

type flight struct {
	name    string
	size    int64
	got, up int64
	start   time.Time
}

type sample struct {
	at      time.Time
	got, up int64
}

func newTracker(verb, before string, now time.Time) *tracker {
	return &tracker{verb: verb, before: before, start: now, planned: map[string]int{}, done: map[string]int{}, inFlight: map[string]*flight{}}
}

func itemKey(address, version string) string { return address + " " + version }

// handle takes one engine event.
func (t *tracker) handle(ev item.Event, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if tot := ev.Total; tot != nil {
		t.announced = true
		t.total += tot.Packages
		t.exactBytes += tot.Bytes
		for _, pl := range tot.Items {
			t.planned[itemKey(pl.Address, pl.Version)] += pl.Packages
		}
	}
	if p := ev.Package; p != nil {
		key := itemKey(p.Address, p.Version) + " " + p.Name
		f := t.inFlight[key]
		switch {
		case p.Done:
			if f != nil {
				delete(t.inFlight, key)
			}
			ik := itemKey(p.Address, p.Version)
			if _, planned := t.planned[ik]; !planned || t.done[ik] < t.planned[ik] {
				t.done[ik]++
			}
		case f == nil && ev.Bytes == 0 && ev.Uploaded == 0:
			t.inFlight[key] = &flight{name: itemKey(p.Address, p.Version) + " " + p.Name, size: p.Size, start: now}
			t.started++
			if p.Size > 0 {
				t.sized++
				t.knownSizes += p.Size
			}
		case f != nil:
			f.got += ev.Bytes
			f.up += ev.Uploaded
		}
	}
	if ev.Uploaded != 0 {
		t.up += ev.Uploaded
		t.upSeen = true
	}
	if ev.Bytes != 0 {
		if t.firstByte.IsZero() {
			t.firstByte = now
		}
		t.got += ev.Bytes
	}
	if it := ev.Item; it != nil {
		if n, ok := t.planned[itemKey(it.Address, it.Version)]; ok {
			// Platforms already in the target, or no longer offered, end
			// without a download: the finished item accounts for them.
			t.done[itemKey(it.Address, it.Version)] = n
		}
		if it.State == item.Failed || it.State == item.Conflicted {
			t.itemsFailed++
		}
	}
}

// packagesDone counts finished packages over all items.
func (t *tracker) packagesDone() int {
	n := 0
	for _, d := range t.done {
		n += d
	}
	return n
}

// rates are the download and upload bytes per second over the last few
// seconds of samples.
func (t *tracker) rates(now time.Time) (down, up float64) {
	t.samples = append(t.samples, sample{now, t.got, t.up})
	for len(t.samples) > 2 && now.Sub(t.samples[0].at) > 5*time.Second {
		t.samples = t.samples[1:]
	}
	first := t.samples[0]
	if d := now.Sub(first.at).Seconds(); d > 0.2 {
		return float64(t.got-first.got) / d, float64(t.up-first.up) / d
	}
	return 0, 0
}

// stageETA is how long remaining bytes take at rate; false when unknown.
func stageETA(remaining int64, rate float64) (time.Duration, bool) {
	if remaining <= 0 {
		return 0, true
	}
	if rate <= 0 {
		return 0, false
	}
	return time.Duration(float64(remaining) / rate * float64(time.Second)), true
}

// expectedBytes is the run's total of bytes: exact when announced,
// otherwise the sizes seen so far plus, for packages not started yet, the
// average seen size. ok is false while nothing is known to estimate from.
func (t *tracker) expectedBytes() (total int64, estimated, ok bool) {
	if t.exactBytes > 0 {
		return t.exactBytes, false, true
	}
	if t.sized == 0 {
		return 0, false, false
	}
	rest := t.total - t.started
	if rest < 0 {
		rest = 0
	}
	total = t.knownSizes + int64(rest)*(t.knownSizes/int64(t.sized))
	// Packages whose size was unknown when they started count as average ones.
	total += int64(t.started-t.sized) * (t.knownSizes / int64(t.sized))
	return total, rest > 0 || t.started > t.sized, true
}

// frame renders the display: a status line and one line per large
// package in flight, each at most width columns, at most height lines.
func (t *tracker) frame(now time.Time, width, height int, spin string) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	down, upRate := t.rates(now)
	if !t.announced {
		// Before the engine announced its work.
		return []string{fit(fmt.Sprintf("%s %s · %s · %s elapsed", spin, t.verb, t.before, shortDuration(now.Sub(t.start))), width)}
	}
	status := fmt.Sprintf("%s %s %d/%d packages", spin, t.verb, t.packagesDone(), t.total)
	total, estimated, known := t.expectedBytes()
	// Downloads and uploads overlap; what is in the target is what counts.
	moved, rate := t.got, down
	if t.upSeen {
		moved, rate = t.up, upRate
	}
	switch {
	case known && estimated:
		status += fmt.Sprintf(" · %s of ~%s", humanBytes(moved), humanBytes(total))
	case known:
		status += fmt.Sprintf(" · %s of %s", humanBytes(moved), humanBytes(total))
	default:
		status += fmt.Sprintf(" · %s", humanBytes(moved))
	}
	if rate > 0 {
		status += fmt.Sprintf(" · %s/s", humanBytes(int64(rate)))
	}
	// The slower of the two stages decides when the run ends.
	downLeft, downOK := stageETA(total-t.got, down)
	upLeft, upOK := stageETA(total-t.up, upRate)
	if !t.upSeen {
		upLeft, upOK = 0, true
	}
	switch {
	case t.packagesDone() >= t.total && t.total > 0:
	case !known || !downOK || !upOK || t.firstByte.IsZero() || now.Sub(t.firstByte) < etaAfter:
		status += " · ETA estimating"
	default:
		status += " · ETA " + shortDuration(max(downLeft, upLeft))
	}
	if t.itemsFailed > 0 {
		status += fmt.Sprintf(" · %d failed", t.itemsFailed)
	}
	status += " · " + shortDuration(now.Sub(t.start)) + " elapsed"
	lines := []string{fit(status, width)}

	var large []*flight
	for _, f := range t.inFlight {
		if f.size >= largePackage || f.got >= largePackage {
			large = append(large, f)
		}
	}
	sort.Slice(large, func(i, j int) bool {
		if !large[i].start.Equal(large[j].start) {
			return large[i].start.Before(large[j].start)
		}
		return large[i].name < large[j].name
	})
	room := min(height-1, 8)
	for i, f := range large {
		if i == room-1 && len(large) > room {
			lines = append(lines, fit(fmt.Sprintf("  … and %d more", len(large)-i), width))
			break
		}
		if i >= room {
			break
		}
		lines = append(lines, fit(packageLine(f, width, t.upSeen), width))
	}
	return lines
}

// packageLine is "  NAME [=====>    ]  48%  55.0 MiB of 114.5 MiB" while
// it downloads, then (when the engine reports uploads) "uploading 48%".
func packageLine(f *flight, width int, uploads bool) string {
	if f.size <= 0 {
		return fmt.Sprintf("  %s  %s", f.name, humanBytes(f.got))
	}
	n, phase := f.got, ""
	if uploads && f.got >= f.size {
		n, phase = f.up, " uploading"
	}
	pct := min(float64(n)/float64(f.size), 1)
	tail := fmt.Sprintf("%s %3.0f%%  %s of %s", phase, pct*100, humanBytes(n), humanBytes(f.size))
	barWidth := 20
	name := f.name
	if avail := width - 1 - 2 - barWidth - 3 - utf8.RuneCountInString(tail); utf8.RuneCountInString(name) > avail {
		name = truncate(name, max(avail, 12))
	}
	filled := int(pct * float64(barWidth))
	bar := strings.Repeat("=", filled)
	if filled < barWidth {
		bar += ">" + strings.Repeat(" ", barWidth-filled-1)
	}
	return fmt.Sprintf("  %s [%s]%s", name, bar, tail)
}

// fit cuts s to fewer than width columns, so the terminal never wraps a
// display line (the redraw counts lines).
func fit(s string, width int) string {
	if width <= 1 {
		return s
	}
	return truncate(s, width-1)
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:max(n-1, 0)]) + "…"
}

// shortDuration is "7s", "3m05s", "1h02m".
func shortDuration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}
