package bundle

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"github.com/opencontainers/go-digest"
)

// fileBlob is a blob entry of a bundle read from a plain file, uploaded
// straight from the file and verified on the way: each upload reads the
// entry's bytes through a [checkedReader], which hashes exactly what it
// hands the upload and withholds the entry's last bytes unless the digest
// is the one the metadata names. So the file is read once per upload, the
// hash runs in the upload's goroutine (uploads in parallel hash in
// parallel), and the registry can never complete the blob from bytes
// that did not verify: it is sent less than the size it was promised.
type fileBlob struct {
	f      *os.File
	offset int64 // of the entry's data in f
	size   int64
	digest digest.Digest
	name   string // the tar entry's name, for messages

	verified atomic.Bool
	mu       sync.Mutex
	err      error // why the bytes did not verify

	// progress counts the bytes read past the furthest any reader got
	// (retries and further repositories do not count again).
	progress func(int64)
	reported atomic.Int64
}

// reader starts a pass over the entry's bytes.
func (b *fileBlob) reader() *checkedReader {
	return &checkedReader{b: b, h: sha256.New()}
}

// failed records why the bytes did not verify; the first reason stays.
func (b *fileBlob) failed(err error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err == nil {
		b.err = err
	}
	return b.err
}

// cause is the reason the bytes did not verify, nil if none was found.
func (b *fileBlob) cause() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// verify reads and hashes the whole entry unless an upload already
// verified it: a blob the target had already was never read.
func (b *fileBlob) verify() error {
	if b.verified.Load() {
		return nil
	}
	if err := b.cause(); err != nil {
		return err
	}
	_, err := io.Copy(io.Discard, b.reader())
	return err
}

// report counts the bytes up to end as read, unless a reader got there
// before.
func (b *fileBlob) report(end int64) {
	for {
		seen := b.reported.Load()
		if end <= seen {
			return
		}
		if b.reported.CompareAndSwap(seen, end) {
			b.progress(end - seen)
			return
		}
	}
}

// checkedReader is one pass over a fileBlob's bytes, hashing each byte it
// returns. The read that would return the entry's last bytes returns them
// only once the digest matched; otherwise it returns an error wrapping
// [ErrCorrupt] and no bytes, as does every later read. It is no io.Seeker
// and no io.ReaderAt, so no client can rewind it or read around the hash;
// a retry takes a fresh one ([checkedReader.Reopen]).
type checkedReader struct {
	b    *fileBlob
	h    hash.Hash
	off  int64
	done bool // the last bytes were returned: they verified
	err  error
}

func (c *checkedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.done {
		return 0, io.EOF
	}
	if rem := c.b.size - c.off; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := c.b.f.ReadAt(p, c.b.offset+c.off)
	if n < len(p) {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		c.err = c.b.failed(fmt.Errorf("%w: %s: %v after %d of %d bytes (truncated bundle?)", ErrCorrupt, c.b.name, err, c.off+int64(n), c.b.size))
		return 0, c.err
	}
	c.h.Write(p)
	c.off += int64(n)
	if c.off == c.b.size {
		if got := hex.EncodeToString(c.h.Sum(nil)); got != c.b.digest.Encoded() {
			c.err = c.b.failed(fmt.Errorf("%w: entry %s has digest sha256:%s", ErrCorrupt, c.b.name, got))
			return 0, c.err
		}
		c.b.verified.Store(true)
		c.done = true
	}
	c.b.report(c.off)
	return n, nil
}

// Reopen starts a new pass from the entry's first byte, independent of
// this one ([target.Reopener]): PutBlob takes one per attempt. Once a
// pass found the bytes wrong, there is none.
func (c *checkedReader) Reopen() (io.Reader, error) {
	if err := c.b.cause(); err != nil {
		return nil, err
	}
	return c.b.reader(), nil
}
