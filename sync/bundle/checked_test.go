package bundle

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
)

// fileBlobOf puts content at offset 100 of a file padded with other bytes
// and describes it as an entry with digest d.
func fileBlobOf(t *testing.T, content []byte, d digest.Digest) *fileBlob {
	t.Helper()
	data := append(append(bytes.Repeat([]byte{'x'}, 100), content...), bytes.Repeat([]byte{'y'}, 100)...)
	path := filepath.Join(t.TempDir(), "bundle.tar")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return &fileBlob{f: f, offset: 100, size: int64(len(content)), digest: d, name: "blobs/sha256/" + d.Encoded(), progress: func(int64) {}}
}

// readIn reads r n bytes at a time, returning what it got and the error
// that ended it (nil at EOF).
func readIn(r io.Reader, n int) ([]byte, error) {
	var out []byte
	buf := make([]byte, n)
	for {
		k, err := r.Read(buf)
		out = append(out, buf[:k]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

func TestCheckedReaderHandsOutExactlyTheEntry(t *testing.T) {
	content := bytes.Repeat([]byte("0123456789"), 50)
	b := fileBlobOf(t, content, digest.FromBytes(content))
	var counted int64
	b.progress = func(n int64) { counted += n }
	for _, n := range []int{1, 7, 499, 500, 4096} {
		got, err := readIn(b.reader(), n)
		if err != nil || !bytes.Equal(got, content) {
			t.Fatalf("reading %d at a time: %d bytes, %v", n, len(got), err)
		}
	}
	if !b.verified.Load() || b.verify() != nil {
		t.Fatal("a pass that returned every byte did not mark the blob verified")
	}
	if counted != int64(len(content)) {
		t.Fatalf("progress counted %d bytes over five passes, want the entry's %d once", counted, len(content))
	}
}

func TestCheckedReaderWithholdsTheLastBytesOfAWrongEntry(t *testing.T) {
	content := bytes.Repeat([]byte("0123456789"), 50)
	wrong := bytes.Clone(content)
	wrong[3] ^= 1 // the first read already carries the damage
	b := fileBlobOf(t, wrong, digest.FromBytes(content))
	for _, n := range []int{1, 7, 499, 500, 4096} {
		got, err := readIn(b.reader(), n)
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("reading %d at a time: error %v, want ErrCorrupt", n, err)
		}
		if len(got) >= len(content) {
			t.Fatalf("reading %d at a time: handed out all %d bytes of a wrong entry", n, len(got))
		}
		if want := (len(content) - 1) / n * n; len(got) != want {
			t.Fatalf("reading %d at a time: handed out %d bytes, want all but the last read (%d)", n, len(got), want)
		}
	}
	if b.verified.Load() {
		t.Fatal("a wrong entry was marked verified")
	}
	if _, err := b.reader().Reopen(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Reopen after a wrong pass: %v, want the ErrCorrupt found", err)
	}
	if err := b.verify(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("verify: %v, want ErrCorrupt", err)
	}
}

func TestCheckedReaderTruncatedFile(t *testing.T) {
	content := []byte("the whole entry")
	b := fileBlobOf(t, content, digest.FromBytes(content))
	b.offset = 100 + int64(len(content)) + 100 - 10 // the file ends 10 bytes into the entry
	got, err := readIn(b.reader(), 4)
	if !errors.Is(err, ErrCorrupt) || len(got) != 8 {
		t.Fatalf("read %d bytes, %v; want the 8 whole reads the file holds, then ErrCorrupt", len(got), err)
	}
}

func TestCheckedReaderEmptyEntry(t *testing.T) {
	b := fileBlobOf(t, nil, digest.FromBytes(nil))
	got, err := readIn(b.reader(), 8)
	if err != nil || len(got) != 0 || !b.verified.Load() {
		t.Fatalf("empty entry: %d bytes, %v, verified %v", len(got), err, b.verified.Load())
	}
	b = fileBlobOf(t, nil, digest.FromBytes([]byte("not empty")))
	if _, err := readIn(b.reader(), 8); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("empty entry with another digest: %v, want ErrCorrupt", err)
	}
}

// Each pass hashes on its own: a pass abandoned halfway (a refused
// upload) does not disturb the next.
func TestCheckedReaderReopenIsIndependent(t *testing.T) {
	content := bytes.Repeat([]byte("abc"), 100)
	b := fileBlobOf(t, content, digest.FromBytes(content))
	first := b.reader()
	if _, err := first.Read(make([]byte, 50)); err != nil {
		t.Fatal(err)
	}
	second, err := first.Reopen()
	if err != nil {
		t.Fatal(err)
	}
	got, err := readIn(second, 64)
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("second pass: %d bytes, %v", len(got), err)
	}
	rest, err := readIn(first, 64)
	if err != nil || !bytes.Equal(rest, content[50:]) {
		t.Fatalf("first pass resumed: %d bytes, %v", len(rest), err)
	}
	if _, ok := any(first).(io.Seeker); ok {
		t.Fatal("a checkedReader must not be rewindable")
	}
	if _, ok := any(first).(io.ReaderAt); ok {
		t.Fatal("a checkedReader must not read around its hash")
	}
}
