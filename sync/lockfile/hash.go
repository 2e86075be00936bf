package lockfile

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"golang.org/x/mod/sumdb/dirhash"
)

// Limits bounds what unpacking one provider zip may cost, so a hostile or
// broken archive cannot exhaust the disk or the CPU. A zero field means
// the default in [DefaultLimits].
type Limits struct {
	// MaxZipSize bounds the zip itself (bytes).
	MaxZipSize int64
	// MaxUnpackedSize bounds the sum of the files' unpacked sizes (bytes).
	MaxUnpackedSize int64
	// MaxFiles bounds the number of entries.
	MaxFiles int
	// MaxRatio bounds how many times larger than the zip the unpacked
	// files may be in total; real provider zips stay under 10.
	MaxRatio int64
}

// DefaultLimits fit every provider on registry.opentofu.org with room to
// spare (the largest unpack to under 1 GiB, at a ratio under 5).
var DefaultLimits = Limits{MaxZipSize: 2 << 30, MaxUnpackedSize: 8 << 30, MaxFiles: 10000, MaxRatio: 200}

func (l Limits) withDefaults() Limits {
	if l.MaxZipSize <= 0 {
		l.MaxZipSize = DefaultLimits.MaxZipSize
	}
	if l.MaxUnpackedSize <= 0 {
		l.MaxUnpackedSize = DefaultLimits.MaxUnpackedSize
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = DefaultLimits.MaxFiles
	}
	if l.MaxRatio <= 0 {
		l.MaxRatio = DefaultLimits.MaxRatio
	}
	return l
}

// PackageHashes is what OpenTofu records for one provider package.
type PackageHashes struct {
	// H1 is "h1:" and the dirhash Hash1 of the unpacked package.
	H1 string
	// ZH is "zh:" and the lower-case hex sha256 of the zip.
	ZH string
}

// HashPackage reads a provider zip from r (streamed into an unlinked spool
// file in spoolDir, "" meaning the system's temporary directory, because a
// zip is read from its end) and returns its hashes. The h1: hash is
// computed over the entries as they would unpack, without writing them out:
// each file's path relative to the package root and the sha256 of its
// content, which is what dirhash.HashDir sees after OpenTofu unpacks it.
// Archives that would unpack outside their directory, hold links or
// devices, repeat a path, or exceed lim are refused with [ErrUnsafeArchive].
func HashPackage(r io.Reader, spoolDir string, lim Limits) (PackageHashes, error) {
	lim = lim.withDefaults()
	f, err := os.CreateTemp(spoolDir, "tofu-oci-mirror-lock-*.zip")
	if err != nil {
		return PackageHashes{}, err
	}
	_ = os.Remove(f.Name()) // the open descriptor keeps it; nothing left behind
	defer f.Close()
	sum := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, sum), io.LimitReader(r, lim.MaxZipSize+1))
	if err != nil {
		return PackageHashes{}, err
	}
	if n > lim.MaxZipSize {
		return PackageHashes{}, fmt.Errorf("%w: zip is larger than %d bytes", ErrUnsafeArchive, lim.MaxZipSize)
	}
	h := PackageHashes{ZH: "zh:" + hex.EncodeToString(sum.Sum(nil))}
	zr, err := zip.NewReader(f, n)
	if err != nil {
		return h, fmt.Errorf("%w: %v", ErrUnsafeArchive, err)
	}
	files, err := checkEntries(zr, n, lim)
	if err != nil {
		return h, err
	}
	var unpacked int64
	h.H1, err = dirhash.Hash1(sortedKeys(files), func(name string) (io.ReadCloser, error) {
		rc, err := files[name].Open()
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrUnsafeArchive, name, err)
		}
		return &boundedReader{rc: rc, name: name, total: &unpacked, max: lim.MaxUnpackedSize}, nil
	})
	if err != nil {
		return h, err
	}
	return h, nil
}

// checkEntries vets every entry as unpacking would meet it and returns the
// regular files by their cleaned path.
func checkEntries(zr *zip.Reader, zipSize int64, lim Limits) (map[string]*zip.File, error) {
	if len(zr.File) > lim.MaxFiles {
		return nil, fmt.Errorf("%w: %d entries, more than %d", ErrUnsafeArchive, len(zr.File), lim.MaxFiles)
	}
	files := map[string]*zip.File{}
	dirs := map[string]bool{}
	var declared uint64
	for _, zf := range zr.File {
		name, err := entryPath(zf.Name)
		if err != nil {
			return nil, err
		}
		mode := zf.Mode()
		switch {
		case mode.IsDir():
			dirs[name] = true
			continue
		case !mode.IsRegular():
			return nil, fmt.Errorf("%w: entry %q is a %s, not a file", ErrUnsafeArchive, zf.Name, mode.Type())
		}
		if _, dup := files[name]; dup || dirs[name] {
			return nil, fmt.Errorf("%w: path %q appears twice", ErrUnsafeArchive, name)
		}
		files[name] = zf
		declared += zf.UncompressedSize64
		if declared > uint64(lim.MaxUnpackedSize) {
			return nil, fmt.Errorf("%w: unpacks to more than %d bytes", ErrUnsafeArchive, lim.MaxUnpackedSize)
		}
	}
	for name := range files {
		// A file where another entry needs a directory cannot unpack.
		for d := path.Dir(name); d != "."; d = path.Dir(d) {
			if _, clash := files[d]; clash {
				return nil, fmt.Errorf("%w: %q is both a file and a directory", ErrUnsafeArchive, d)
			}
		}
	}
	if zipSize > 0 && declared/uint64(zipSize) > uint64(lim.MaxRatio) {
		return nil, fmt.Errorf("%w: unpacks to %d bytes from a %d-byte zip, over %d times its size (a zip bomb?)", ErrUnsafeArchive, declared, zipSize, lim.MaxRatio)
	}
	return files, nil
}

// entryPath returns an entry's path inside the package, refusing any that
// is absolute, climbs out with "..", or uses a backslash or drive letter
// another system would read as a separator.
func entryPath(raw string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w: entry %q %s", ErrUnsafeArchive, raw, why)
	}
	switch {
	case raw == "":
		return bad("has no name")
	case strings.ContainsAny(raw, "\\\x00\n"):
		return bad("contains a backslash, NUL or newline")
	case strings.HasPrefix(raw, "/") || (len(raw) > 1 && raw[1] == ':'):
		return bad("is an absolute path")
	}
	clean := path.Clean(strings.TrimSuffix(raw, "/"))
	if clean == "." || clean == ".." || strings.HasPrefix(clean, "../") {
		return bad("is outside the package directory")
	}
	return clean, nil
}

// boundedReader counts the bytes actually inflated (headers can lie) against
// the limit for the whole package.
type boundedReader struct {
	rc    io.ReadCloser
	name  string
	total *int64
	max   int64
}

func (b *boundedReader) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	*b.total += int64(n)
	if *b.total > b.max {
		return n, fmt.Errorf("%w: %s: unpacks to more than %d bytes", ErrUnsafeArchive, b.name, b.max)
	}
	if err != nil && err != io.EOF {
		return n, fmt.Errorf("%w: %s: %v", ErrUnsafeArchive, b.name, err)
	}
	return n, err
}

func (b *boundedReader) Close() error { return b.rc.Close() }

func sortedKeys(m map[string]*zip.File) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out // dirhash.Hash1 sorts
}
