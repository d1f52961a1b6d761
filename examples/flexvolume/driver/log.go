package driver

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Log writes the lines of one invocation in glfs-subvol's format: each
// starts with the local date and time it was written ("Dec 01 19:30:06",
// date's "%b %d %T") and the invocation's timestamp,
// "[<unix seconds>.<nanoseconds>]", so overlapping calls can be told apart.
// A Log whose writer is nil writes nothing. It is safe for concurrent use.
type Log struct {
	mu     sync.Mutex
	w      io.Writer
	closer io.Closer
	prefix string
	now    func() time.Time
}

// NewLog returns a Log that writes to w (nil: nowhere), stamping every line
// with start.
func NewLog(w io.Writer, start time.Time) *Log {
	return &Log{w: w, prefix: fmt.Sprintf("[%d.%09d]", start.Unix(), start.Nanosecond()), now: time.Now}
}

// OpenLog returns a Log that appends to file, creating it and its
// directory if needed; file "" gives a Log that writes nothing. A file
// that cannot be opened also gives a silent Log (with the error): the
// driver must work without its log.
func OpenLog(file string, start time.Time) (*Log, error) {
	if file == "" {
		return NewLog(nil, start), nil
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return NewLog(nil, start), err
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return NewLog(nil, start), err
	}
	l := NewLog(f, start)
	l.closer = f
	return l, nil
}

// Close closes the file OpenLog opened.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.w = nil
	if l.closer != nil {
		return l.closer.Close()
	}
	return nil
}

// line writes one line, with one Write call (O_APPEND makes it atomic with
// respect to other invocations appending to the same file).
func (l *Log) line(marker, text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w == nil {
		return
	}
	var b strings.Builder
	b.WriteString(l.now().Format(logDateFormat))
	b.WriteByte(' ')
	b.WriteString(l.prefix)
	b.WriteByte(' ')
	if marker != "" {
		b.WriteString(marker)
		b.WriteByte(' ')
	}
	b.WriteString(escapeLine(text))
	b.WriteByte('\n')
	_, _ = io.WriteString(l.w, b.String())
}

// logDateFormat is glfs-subvol's `date "+%b %d %T"`.
const logDateFormat = "Jan 02 15:04:05"

// escapeLine keeps a log entry on one line.
func escapeLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(s)
}

// Args logs the invocation's arguments ("> ").
func (l *Log) Args(args []string) { l.line(">", strings.Join(args, " ")) }

// Reply logs the exit code and the reply ("< ").
func (l *Log) Reply(code int, reply string) { l.line("<", strconv.Itoa(code)+" "+reply) }

// Command logs an external command ("! ").
func (l *Log) Command(cmd string) { l.line("!", cmd) }

// Printf logs a free-form diagnostic line.
func (l *Log) Printf(format string, args ...any) { l.line("", fmt.Sprintf(format, args...)) }

// Handler returns a slog.Handler that writes records to the log: the mount
// commands that mount-utils reports through klog ("Mounting cmd (mount)
// with arguments (...)", "Unmounting <path>") and the mount package's lazy
// unmounts become "!" lines, everything else a diagnostic line
// "[LEVEL ]message key=value ...".
func (l *Log) Handler() slog.Handler { return &logHandler{l: l} }

type logHandler struct {
	l      *Log
	attrs  []slog.Attr
	prefix string // group prefix for keys
}

var (
	klogMountCmd = regexp.MustCompile(`^Mounting cmd \((.*?)\) with arguments \((.*)\)$`)
	klogUnmount  = regexp.MustCompile(`^Unmounting (/.*)$`)
)

func (h *logHandler) Enabled(context.Context, slog.Level) bool {
	h.l.mu.Lock()
	defer h.l.mu.Unlock()
	return h.l.w != nil
}

func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	msg := strings.TrimSpace(r.Message)
	if m := klogMountCmd.FindStringSubmatch(msg); m != nil {
		h.l.Command(strings.TrimSpace(m[1] + " " + strings.TrimSpace(m[2])))
		return nil
	}
	if m := klogUnmount.FindStringSubmatch(msg); m != nil {
		h.l.Command("umount " + m[1])
		return nil
	}
	attrs := make([]slog.Attr, 0, len(h.attrs)+r.NumAttrs())
	attrs = append(attrs, h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		attrs = append(attrs, slog.Attr{Key: h.prefix + a.Key, Value: a.Value})
		return true
	})
	if msg == "unmounted" { // the mount package's report
		var mp string
		var lazy bool
		for _, a := range attrs {
			switch a.Key {
			case "mountpoint":
				mp = a.Value.String()
			case "lazy":
				lazy = a.Value.Kind() == slog.KindBool && a.Value.Bool()
			}
		}
		if lazy && mp != "" {
			// A umount2(MNT_DETACH) system call, not a command; shown as
			// the equivalent one.
			h.l.Command("umount -l " + mp)
			return nil
		}
	}
	var b strings.Builder
	if r.Level >= slog.LevelWarn {
		b.WriteString(r.Level.String())
		b.WriteByte(' ')
	}
	b.WriteString(msg)
	for _, a := range attrs {
		b.WriteByte(' ')
		b.WriteString(a.Key)
		b.WriteByte('=')
		b.WriteString(quoteValue(a.Value.Resolve().String()))
	}
	h.l.line("", b.String())
	return nil
}

func (h *logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := &logHandler{l: h.l, prefix: h.prefix, attrs: append([]slog.Attr(nil), h.attrs...)}
	for _, a := range as {
		n.attrs = append(n.attrs, slog.Attr{Key: h.prefix + a.Key, Value: a.Value})
	}
	return n
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &logHandler{l: h.l, attrs: h.attrs, prefix: h.prefix + name + "."}
}

// quoteValue quotes v when it is empty or has spaces, quotes or '='.
func quoteValue(v string) string {
	if v == "" || strings.ContainsAny(v, " \t\"=\n\r") {
		return strconv.Quote(v)
	}
	return v
}
