package spool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// ErrRestarted is what a [Tee] reader gets once the download it follows
// started over below bytes already read: what was read may not be what
// the new attempt writes, so that upload is void (the complete spool file
// is uploaded instead).
var ErrRestarted = errors.New("the download started over after bytes were read")

// Tee is a spool file that an upload reads while a download writes it, so
// a package goes up as it comes down, and a failed upload can start again
// from disk without downloading again.
//
// The download writes through the Tee (Write, Seek and Truncate, as
// upstream.Spool); readers use ReadAt, which waits for the bytes asked
// for. The last byte of the package is held back until [Tee.Finish]
// confirms the download (its digest checked): a registry therefore never
// receives a whole blob the check then refuses, and [Tee.Finish] with an
// error fails every read instead.
type Tee struct {
	f *os.File

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every change
	pos      int64         // the writer's offset
	written  int64         // bytes valid from offset 0
	size     int64         // the package's size when known, else -1
	served   int64         // end of the furthest byte a reader got
	restart  bool          // truncated below served: reads fail
	finished bool
	err      error
}

// NewTee returns a Tee over f, an empty spool file ([File]). size is the
// package's size when known, else -1: the download can tell it later
// ([Tee.ExpectSize]).
func NewTee(f *os.File, size int64) *Tee {
	if size < 0 {
		size = -1
	}
	return &Tee{f: f, size: size, changed: make(chan struct{})}
}

// notify wakes the waiting readers; t.mu is held.
func (t *Tee) notify() {
	close(t.changed)
	t.changed = make(chan struct{})
}

// Write appends p at the writer's offset.
func (t *Tee) Write(p []byte) (int, error) {
	t.mu.Lock()
	off := t.pos
	t.mu.Unlock()
	n, err := t.f.WriteAt(p, off)
	t.mu.Lock()
	t.pos = off + int64(n)
	if t.pos > t.written {
		t.written = t.pos
	}
	t.notify()
	t.mu.Unlock()
	return n, err
}

// Seek moves the writer's offset (the download rewinds to retry).
func (t *Tee) Seek(offset int64, whence int) (int64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += t.pos
	case io.SeekEnd:
		offset += t.written
	default:
		return t.pos, fmt.Errorf("spool: seek whence %d", whence)
	}
	if offset < 0 {
		return t.pos, errors.New("spool: negative seek")
	}
	t.pos = offset
	return offset, nil
}

// Truncate cuts the file at size (the download starts over). Readers that
// already got bytes past it fail from now on with [ErrRestarted].
func (t *Tee) Truncate(size int64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.f.Truncate(size); err != nil {
		return err
	}
	if size < t.written {
		t.written = size
	}
	if size < t.served {
		t.restart = true
	}
	t.notify()
	return nil
}

// ExpectSize tells the Tee the package's size, learnt from the answer's
// Content-Length when the registry did not say it; a size already known
// is kept (the download checks the two agree).
func (t *Tee) ExpectSize(n int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.size < 0 && n >= 0 {
		t.size = n
		t.notify()
	}
}

// Finish ends the download: nil once its bytes are confirmed (the whole
// package readable), or the reason it failed (every read then fails).
func (t *Tee) Finish(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.finished, t.err = true, err
	if err == nil && t.size < 0 {
		t.size = t.written
	}
	t.notify()
}

// Restarted reports whether a reader met [ErrRestarted] or would.
func (t *Tee) Restarted() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.restart
}

// Size waits until the package's size is known (from the registry, the
// answer's Content-Length, or the end of the download) and returns it; it
// fails when the download failed or ctx ends first.
func (t *Tee) Size(ctx context.Context) (int64, error) {
	for {
		t.mu.Lock()
		size, err, finished, ch := t.size, t.err, t.finished, t.changed
		t.mu.Unlock()
		switch {
		case err != nil:
			return 0, err
		case size >= 0:
			return size, nil
		case finished:
			return 0, errors.New("spool: download ended without a size")
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// ReadAt reads at off once bytes there are written: it waits for at
// least one, then returns what is there up to len(p). Unlike
// io.ReaderAt's contract, a short read without an error means more is
// coming: read it through an io.SectionReader's Read, as an upload does.
// At the end of the package it returns io.EOF; the package's last byte is
// given out only after Finish(nil).
func (t *Tee) ReadAt(p []byte, off int64) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		t.mu.Lock()
		if t.restart {
			t.mu.Unlock()
			return 0, ErrRestarted
		}
		if t.err != nil {
			err := t.err
			t.mu.Unlock()
			return 0, fmt.Errorf("spool: the download failed: %w", err)
		}
		// readable: the end of what a reader may have now.
		readable := t.written
		if !t.finished {
			if t.size >= 0 {
				readable = min(readable, t.size-1)
			} else {
				readable--
			}
		} else if off >= t.size {
			t.mu.Unlock()
			return 0, io.EOF
		}
		if readable > off {
			end := min(off+int64(len(p)), readable)
			if end > t.served {
				t.served = end
			}
			t.mu.Unlock()
			n, err := t.f.ReadAt(p[:end-off], off)
			if err == io.EOF && int64(n) == end-off {
				err = nil
			}
			if err == nil && t.finishedAt(off+int64(n)) {
				err = io.EOF
			}
			return n, err
		}
		ch := t.changed
		t.mu.Unlock()
		<-ch
	}
}

// finishedAt reports whether end is the end of a finished package.
func (t *Tee) finishedAt(end int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.finished && t.err == nil && end >= t.size
}
