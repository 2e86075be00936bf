package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"
)

// terminal says what stderr can show. The zero value is a pipe or a file
// (cron): no display, no colour, today's machine log format.
type terminal struct {
	tty   bool // stderr is a terminal
	dumb  bool // TERM=dumb: no cursor movement, no colour
	color bool // colour allowed (a terminal, not dumb, NO_COLOR unset)
	fd    int
}

// detectTerminal looks at w and the environment the way people expect:
// NO_COLOR (https://no-color.org) turns colour off, TERM=dumb also turns
// off anything that moves the cursor.
func detectTerminal(w io.Writer, getenv func(string) string) terminal {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return terminal{}
	}
	t := terminal{tty: true, fd: int(f.Fd())}
	t.dumb = getenv("TERM") == "dumb"
	t.color = !t.dumb && getenv("NO_COLOR") == ""
	return t
}

// size is the terminal's columns and rows, with a fallback when unknown.
func (t terminal) size() (int, int) {
	w, h, err := term.GetSize(t.fd)
	if err != nil || w <= 0 || h <= 0 {
		return 80, 24
	}
	return w, h
}

// screen owns stderr on a terminal: every write (a log line) goes above
// the live display, which is redrawn under it. Between draws the cursor
// rests on the first display line, so even a write that bypasses the
// screen lands above the display and the next redraw clears what it covered.
type screen struct {
	mu    gosync.Mutex
	w     io.Writer
	term  terminal
	frame func(width, height int) []string // nil: no display
	drawn int                              // display lines on screen
	stop  chan struct{}
	done  chan struct{}
}

func newScreen(w io.Writer, t terminal) *screen {
	s := &screen{w: w, term: t}
	if w == os.Stderr {
		activeScreen.Store(s)
	}
	return s
}

// activeScreen is the screen on the process's stderr, if any, so the
// signal handler's message also prints above the display.
var activeScreen atomic.Pointer[screen]

// stderrNow is where a message outside any command's logger goes.
func stderrNow() io.Writer {
	if s := activeScreen.Load(); s != nil {
		return s
	}
	return os.Stderr
}

// Write prints p (whole log lines) above the display.
func (s *screen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clear()
	n, err := s.w.Write(p)
	s.draw()
	return n, err
}

// show starts redrawing frame every tick until the returned stop is called,
// which draws the last frame once more and clears the display.
func (s *screen) show(frame func(width, height int) []string, tick time.Duration) (stop func()) {
	s.mu.Lock()
	s.frame = frame
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	s.draw()
	s.mu.Unlock()
	go func() {
		defer close(s.done)
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				s.mu.Lock()
				s.clear()
				s.draw()
				s.mu.Unlock()
			}
		}
	}()
	var once gosync.Once
	return func() {
		once.Do(func() {
			close(s.stop)
			<-s.done
			s.mu.Lock()
			defer s.mu.Unlock()
			// The last frame (counts at their totals) is drawn once, so a
			// recording of the screen shows how the run ended.
			s.clear()
			s.draw()
			s.clear()
			s.frame = nil
		})
	}
}

// clear erases the display: the cursor is on its first line.
func (s *screen) clear() {
	if s.drawn > 0 {
		_, _ = io.WriteString(s.w, "\r\x1b[J")
		s.drawn = 0
	}
}

// draw writes the frame and moves the cursor back to its first line.
func (s *screen) draw() {
	if s.frame == nil {
		return
	}
	w, h := s.term.size()
	lines := s.frame(w, h)
	if len(lines) == 0 {
		return
	}
	out := strings.Join(lines, "\n")
	if len(lines) > 1 {
		out += fmt.Sprintf("\x1b[%dA", len(lines)-1)
	}
	_, _ = io.WriteString(s.w, out+"\r")
	s.drawn = len(lines)
}

// spinner frames, one per 100 ms.
var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

func spinFrame(now time.Time) string {
	return spinner[(now.UnixMilli()/100)%int64(len(spinner))]
}
