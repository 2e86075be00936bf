package spool_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/spool"
)

func newTee(t *testing.T, size int64) *spool.Tee {
	t.Helper()
	f, err := spool.File(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return spool.NewTee(f, size)
}

// readAll reads the tee through a section reader, as an upload does, in a
// goroutine; the result arrives on the channel.
func readAll(tee *spool.Tee, size int64) <-chan result {
	out := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(io.NewSectionReader(tee, 0, size))
		out <- result{b, err}
	}()
	return out
}

type result struct {
	data []byte
	err  error
}

func write(t *testing.T, tee *spool.Tee, p []byte) {
	t.Helper()
	if n, err := tee.Write(p); err != nil || n != len(p) {
		t.Fatalf("write: %d, %v", n, err)
	}
}

// readAt reads at off with a deadline: ok is false when it is still
// waiting when the deadline passes.
func readAt(tee *spool.Tee, p []byte, off int64, wait time.Duration) (n int, err error, ok bool) {
	type r struct {
		n   int
		err error
	}
	ch := make(chan r, 1)
	go func() { n, err := tee.ReadAt(p, off); ch <- r{n, err} }()
	select {
	case got := <-ch:
		return got.n, got.err, true
	case <-time.After(wait):
		return 0, nil, false
	}
}

func TestTeeGivesBytesAsTheyAreWrittenButHoldsTheLastOne(t *testing.T) {
	data := []byte("0123456789")
	tee := newTee(t, int64(len(data)))
	write(t, tee, data[:4])
	p := make([]byte, 8)
	n, err, ok := readAt(tee, p, 0, 5*time.Second)
	if !ok || err != nil || string(p[:n]) != "0123" {
		t.Fatalf("read while downloading: %q, %v, returned %v; want the 4 bytes written", p[:n], err, ok)
	}
	write(t, tee, data[4:])
	// Everything is written, but the download is not confirmed: the last
	// byte waits.
	n, err, ok = readAt(tee, p, 4, 5*time.Second)
	if !ok || err != nil || string(p[:n]) != "45678" {
		t.Fatalf("read before Finish: %q, %v, returned %v; want 5 bytes, not the last", p[:n], err, ok)
	}
	if _, _, ok := readAt(tee, p, 9, 100*time.Millisecond); ok {
		t.Fatal("the last byte was given out before Finish")
	}
	got := readAll(tee, int64(len(data)))
	tee.Finish(nil)
	r := <-got
	if r.err != nil || !bytes.Equal(r.data, data) {
		t.Fatalf("after Finish: %q, %v", r.data, r.err)
	}
}

func TestTeeFailedDownloadFailsEveryRead(t *testing.T) {
	tee := newTee(t, 10)
	write(t, tee, []byte("012345678"))
	got := readAll(tee, 10)
	mismatch := errors.New("checksum mismatch")
	time.Sleep(10 * time.Millisecond) // let the reader take what there is
	tee.Finish(mismatch)
	r := <-got
	if !errors.Is(r.err, mismatch) {
		t.Fatalf("reader after a failed download: %q, %v; want the download's error", r.data, r.err)
	}
	if len(r.data) == 10 {
		t.Fatal("the whole package was read although the download failed")
	}
	if _, err := tee.ReadAt(make([]byte, 1), 0); !errors.Is(err, mismatch) {
		t.Fatalf("a later read: %v, want the download's error", err)
	}
}

func TestTeeRestartVoidsReadersThatGotPastIt(t *testing.T) {
	tee := newTee(t, 10)
	write(t, tee, []byte("01234"))
	if n, err := tee.ReadAt(make([]byte, 3), 0); n != 3 || err != nil {
		t.Fatalf("read: %d, %v", n, err)
	}
	// Truncating above what was read leaves readers alone...
	if err := tee.Truncate(4); err != nil {
		t.Fatal(err)
	}
	if tee.Restarted() {
		t.Fatal("a truncate above the bytes read voided the readers")
	}
	// ...below it, the download starts over and readers must not go on.
	if _, err := tee.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if err := tee.Truncate(0); err != nil {
		t.Fatal(err)
	}
	if !tee.Restarted() {
		t.Fatal("Restarted is false after a truncate below the bytes read")
	}
	write(t, tee, []byte("0123456789"))
	if _, err := tee.ReadAt(make([]byte, 3), 3); !errors.Is(err, spool.ErrRestarted) {
		t.Fatalf("read after the restart: %v, want ErrRestarted", err)
	}
}

func TestTeeSizeFromContentLengthOrTheEnd(t *testing.T) {
	tee := newTee(t, -1)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := tee.Size(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Size with nothing known: %v, want to wait", err)
	}
	tee.ExpectSize(6)
	tee.ExpectSize(7) // a second hint does not change it
	if n, err := tee.Size(context.Background()); n != 6 || err != nil {
		t.Fatalf("Size after ExpectSize: %d, %v", n, err)
	}

	unknown := newTee(t, -1)
	write(t, unknown, []byte("abc"))
	// Without a size the last byte written so far is held back too.
	if _, _, ok := readAt(unknown, make([]byte, 1), 2, 100*time.Millisecond); ok {
		t.Fatal("with no size known the newest byte was given out before Finish")
	}
	unknown.Finish(nil)
	if n, err := unknown.Size(context.Background()); n != 3 || err != nil {
		t.Fatalf("Size after Finish: %d, %v", n, err)
	}
	r := <-readAll(unknown, 3)
	if string(r.data) != "abc" || r.err != nil {
		t.Fatalf("read: %q, %v", r.data, r.err)
	}
	failed := newTee(t, -1)
	failed.Finish(errors.New("gone"))
	if _, err := failed.Size(context.Background()); err == nil {
		t.Fatal("Size of a failed download: no error")
	}
}
