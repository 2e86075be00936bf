package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	gosync "sync"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"
)

// ANSI colours of the human log format.
const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiDim    = "\x1b[2m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
)

// humanHandler is the log format for a person at a terminal: the message
// first, details after it, warnings and errors marked so they stand out.
// Each record is one Write, so the screen can keep it above the display.
type humanHandler struct {
	w      io.Writer
	mu     *gosync.Mutex
	level  slog.Leveler
	color  bool
	prefix string // attributes from WithAttrs, rendered
	group  string
}

func newHumanHandler(w io.Writer, level slog.Leveler, color bool) *humanHandler {
	return &humanHandler{w: w, mu: &gosync.Mutex{}, level: level, color: color}
}

// Enabled reports whether records at l are written.
func (h *humanHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

// engineItemMessages are the engine's own per-item records ("imported",
// "published"). The CLI prints one readable line per item (logItem), so on
// a terminal they are shown only with --log-level debug.
var engineItemMessages = map[string]bool{"imported": true, "published": true}

// Handle writes one record as one line.
func (h *humanHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level == slog.LevelInfo && engineItemMessages[r.Message] && h.level.Level() > slog.LevelDebug {
		return nil
	}
	var b strings.Builder
	// A joined error is one record over several lines: indent the rest
	// so each record still reads as one entry.
	r.Message = strings.ReplaceAll(strings.TrimRight(r.Message, "\n"), "\n", "\n  ")
	switch {
	case r.Level >= slog.LevelError:
		b.WriteString(h.paint(ansiRed+ansiBold, "✗ error: ") + h.paint(ansiRed, r.Message))
	case r.Level >= slog.LevelWarn:
		b.WriteString(h.paint(ansiYellow+ansiBold, "! warning: ") + h.paint(ansiYellow, r.Message))
	case r.Level < slog.LevelInfo:
		b.WriteString(h.paint(ansiDim, r.Message))
	case strings.HasPrefix(r.Message, "✓ "):
		b.WriteString(h.paint(ansiGreen, "✓") + r.Message[len("✓"):])
	default:
		b.WriteString(r.Message)
	}
	b.WriteString(h.prefix)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(h.attr(h.group, a))
		return true
	})
	b.WriteString("\n")
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

func (h *humanHandler) attr(group string, a slog.Attr) string {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return ""
	}
	key := a.Key
	if group != "" {
		key = group + "." + key
	}
	if a.Value.Kind() == slog.KindGroup {
		var b strings.Builder
		for _, g := range a.Value.Group() {
			b.WriteString(h.attr(key, g))
		}
		return b.String()
	}
	v := a.Value.String()
	if v == "" || strings.ContainsAny(v, " \t\n\"=") {
		v = strconv.Quote(v)
	}
	return " " + h.paint(ansiDim, key+"=") + v
}

// WithAttrs returns a handler that adds attrs to every record.
func (h *humanHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	for _, a := range attrs {
		c.prefix += h.attr(h.group, a)
	}
	return &c
}

// WithGroup returns a handler that qualifies later attributes with name.
func (h *humanHandler) WithGroup(name string) slog.Handler {
	c := *h
	if c.group != "" {
		name = c.group + "." + name
	}
	c.group = name
	return &c
}

func (h *humanHandler) paint(code, s string) string {
	if !h.color || s == "" {
		return s
	}
	return code + s + ansiReset
}

// logItem logs one finished item: today's key=value record for machines,
// or one readable line for a person (verb is what happened: "copied", "imported").
func logItem(l *slog.Logger, it *item.Result, verb string) {
	if _, human := l.Handler().(*humanHandler); human {
		logItemHuman(l, it, verb)
		return
	}
	attrs := []any{string(it.Kind), it.Address, "version", it.Version, "state", it.State}
	if len(it.Platforms) > 0 {
		attrs = append(attrs, "platforms", it.Platforms)
	}
	if it.Uploaded > 0 {
		attrs = append(attrs, "uploaded", humanBytes(it.Uploaded))
	}
	for _, w := range it.Warnings {
		l.Warn(w, string(it.Kind), it.Address, "version", it.Version)
	}
	if it.Err != nil {
		l.Error(it.Err.Error(), attrs...)
		return
	}
	l.Info("copied", attrs...)
}

// logItemHuman is "✓ copied registry.opentofu.org/acme/heavy 1.0.0: 4 platforms, 114.5 MiB".
func logItemHuman(l *slog.Logger, it *item.Result, verb string) {
	name := strings.TrimSpace(it.Address + " " + it.Version)
	for _, w := range it.Warnings {
		l.Warn(name + ": " + w)
	}
	if it.Err != nil {
		// The engine's errors already name the item.
		l.Error(it.Err.Error())
		return
	}
	var details []string
	if len(it.Platforms) > 0 {
		details = append(details, plural(len(it.Platforms), "platform"))
	}
	if it.Uploaded > 0 {
		details = append(details, humanBytes(it.Uploaded))
	}
	msg := fmt.Sprintf("✓ %s %s", verb, name)
	if len(details) > 0 {
		msg += ": " + strings.Join(details, ", ")
	}
	l.Info(msg)
}
