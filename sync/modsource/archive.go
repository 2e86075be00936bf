package modsource

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/bzip2"
	"compress/flate"
	"compress/gzip"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/ulikunitz/xz"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/upstream"
)

// fetchArchive downloads src into a spool file and unpacks it into dst.
func (f *Fetcher) fetchArchive(ctx context.Context, src Source, dst string) (int64, error) {
	if f.http == nil {
		return 0, fmt.Errorf("%w: no HTTP fetcher configured for archives", ErrUnsupportedSource)
	}
	spool, err := os.CreateTemp(f.tempDir, "tofu-oci-mirror-module-*.archive")
	if err != nil {
		return 0, fmt.Errorf("spool: %w", err)
	}
	defer func() {
		_ = spool.Close()
		_ = os.Remove(spool.Name())
	}()
	var n int64
	if src.CredentialsHost != "" {
		rf, ok := f.http.(RegistryCredentialsFetcher)
		if !ok {
			return 0, fmt.Errorf("%w: no client to send the registry credentials of %s configured", ErrUnsupportedSource, src.CredentialsHost)
		}
		n, err = rf.FetchWithRegistryCredentials(ctx, src.CredentialsHost, src.URL, spool, f.limits.MaxArchiveSize)
	} else {
		get := src.URL
		if src.Kind == KindArchive { // OpenTofu's registry client, not go-getter, fetches direct downloads
			if get, err = f.withNetrc(src.URL); err != nil {
				return 0, err
			}
		}
		n, err = f.http.Fetch(ctx, get, spool, f.limits.MaxArchiveSize)
	}
	if errors.Is(err, upstream.ErrTooLarge) {
		return n, fmt.Errorf("%w: download over %d bytes: %w", ErrArchiveTooLarge, f.limits.MaxArchiveSize, err)
	}
	if err != nil {
		return n, err
	}
	if n > f.limits.MaxArchiveSize {
		return n, fmt.Errorf("%w: download is %d bytes, the limit is %d", ErrArchiveTooLarge, n, f.limits.MaxArchiveSize)
	}
	if src.Checksum != "" {
		if err := verifyChecksum(spool, src.Checksum); err != nil {
			return n, err
		}
	}
	if err := checkFormat(spool, n, src); err != nil {
		return n, err
	}
	_, err = Extract(spool, n, dst, f.limits)
	return n, err
}

// checkFormat refuses, before unpacking, what OpenTofu would not unpack:
// content other than the format the address names (its decompressor is
// chosen by name), and for a direct download anything but zip, tar.gz,
// tar.xz or tar.bz2 (what its sniffer knows: no plain tar).
func checkFormat(r io.ReaderAt, size int64, src Source) error {
	got := sniff(r, size)
	switch {
	case src.Kind == KindDirect && (got == "" || got == FormatTar):
		return fmt.Errorf("%w: a direct registry download must be a zip, or a tar compressed with gzip, xz or bzip2 (OpenTofu's rule); this is %s", ErrInvalidArchive, describeFormat(got))
	case src.Format != "" && got != src.Format:
		return fmt.Errorf("%w: the address names a %s archive but the content is %s; OpenTofu picks the decompressor by the name and would fail too", ErrInvalidArchive, src.Format, describeFormat(got))
	}
	return nil
}

func describeFormat(f string) string {
	if f == "" {
		return "no known archive format"
	}
	return "a " + f + " archive"
}

// checksumHash parses go-getter's "TYPE:HEX" checksum parameter.
func checksumHash(sum string) (hash.Hash, []byte, error) {
	typ, value, ok := strings.Cut(sum, ":")
	var h hash.Hash
	switch strings.ToLower(typ) {
	case "md5":
		h = md5.New()
	case "sha1":
		h = sha1.New()
	case "sha256":
		h = sha256.New()
	case "sha512":
		h = sha512.New()
	}
	want, err := hex.DecodeString(value)
	if !ok || h == nil || err != nil || len(want) != h.Size() {
		return nil, nil, fmt.Errorf("%w: checksum parameter %q (want md5, sha1, sha256 or sha512, a colon and the hex digest)", ErrUnsupportedSource, sum)
	}
	return h, want, nil
}

func verifyChecksum(f *os.File, sum string) error {
	h, want, err := checksumHash(sum)
	if err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := h.Sum(nil); !bytes.Equal(got, want) {
		return fmt.Errorf("%w: got %x, the address says %s", ErrChecksum, got, sum)
	}
	return nil
}

// Extract unpacks the archive in r (size bytes) into the directory dst,
// which must exist, and returns its format (FormatZip, FormatTarGz,
// FormatTarXz, FormatTarBz2 or FormatTar), found from the content (magic
// bytes), whatever the name said.
//
// Entries are refused with an error wrapping manifest.ErrUnsafePath when
// their name is absolute or has a ".." element, or when a symlink's target
// is absolute or resolves outside dst. Symlinks are created after every
// other entry, so no entry is ever written through one; a tar hard link
// becomes a copy of an entry already unpacked. Devices, pipes and other
// special entries are refused. Going over limits (entries, or unpacked
// bytes counted as they are written, whatever the headers claim) wraps
// [ErrArchiveTooLarge]; an unreadable archive wraps [ErrInvalidArchive].
func Extract(r io.ReaderAt, size int64, dst string, limits Limits) (string, error) {
	limits = limits.withDefaults()
	root, err := filepath.Abs(dst)
	if err != nil {
		return "", err
	}
	if root, err = filepath.EvalSymlinks(root); err != nil {
		return "", err
	}
	x := &extractor{root: root, limits: limits, files: map[string]bool{}}
	format := sniff(r, size)
	section := io.NewSectionReader(r, 0, size)
	switch format {
	case FormatZip:
		err = x.zip(r, size)
	case FormatTarGz:
		var zr *gzip.Reader
		if zr, err = gzip.NewReader(section); err == nil {
			err = x.tar(zr)
		} else {
			err = fmt.Errorf("%w: gzip: %v", ErrInvalidArchive, err)
		}
	case FormatTarXz:
		var xr *xz.Reader
		if xr, err = xz.NewReader(section); err == nil {
			err = x.tar(xr)
		} else {
			err = fmt.Errorf("%w: xz: %v", ErrInvalidArchive, err)
		}
	case FormatTarBz2:
		err = x.tar(bzip2.NewReader(section))
	case FormatTar:
		err = x.tar(section)
	default:
		var head [8]byte
		n, _ := r.ReadAt(head[:], 0)
		return "", fmt.Errorf("%w: not a zip, tar.gz, tar.xz, tar.bz2 or tar file (starts with %q)", ErrInvalidArchive, head[:n])
	}
	if err == nil {
		err = x.finish()
	}
	if err != nil {
		return format, fmt.Errorf("%s archive: %w", format, err)
	}
	return format, nil
}

// sniff finds an archive's format from its first bytes; "" when unknown.
func sniff(r io.ReaderAt, size int64) string {
	var magic [512]byte
	n, _ := r.ReadAt(magic[:min(int64(len(magic)), size)], 0)
	head := magic[:n]
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")) || bytes.HasPrefix(head, []byte("PK\x05\x06")):
		return FormatZip
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return FormatTarGz
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
		return FormatTarXz
	case bytes.HasPrefix(head, []byte("BZh")):
		return FormatTarBz2
	case n >= 262 && bytes.Equal(head[257:262], []byte("ustar")):
		return FormatTar
	}
	return ""
}

// extractor writes entries under root, enforcing the limits.
type extractor struct {
	root    string
	limits  Limits
	entries int
	written int64
	files   map[string]bool // regular files unpacked, by clean name
	links   []symlink
}

type symlink struct{ name, target string }

var windowsDriveRe = regexp.MustCompile(`^[A-Za-z]:`)

// entryName checks an archive entry name and returns it clean and
// slash-separated; "" means the root itself (skip it).
func entryName(name string) (string, error) {
	n := strings.ReplaceAll(name, "\\", "/")
	switch {
	case strings.ContainsRune(n, 0):
		return "", fmt.Errorf("%w: entry name %q holds a NUL byte", ErrInvalidArchive, name)
	case strings.HasPrefix(n, "/") || windowsDriveRe.MatchString(n):
		return "", fmt.Errorf("%w: entry %q has an absolute path", manifest.ErrUnsafePath, name)
	}
	if slices.Contains(strings.Split(n, "/"), "..") {
		return "", fmt.Errorf("%w: entry %q has a \"..\" path element", manifest.ErrUnsafePath, name)
	}
	c := path.Clean(n)
	if c == "." {
		return "", nil
	}
	return c, nil
}

func (x *extractor) count() error {
	x.entries++
	if x.entries > x.limits.MaxEntries {
		return fmt.Errorf("%w: more than %d entries", ErrArchiveTooLarge, x.limits.MaxEntries)
	}
	return nil
}

func (x *extractor) path(name string) string { return filepath.Join(x.root, filepath.FromSlash(name)) }

func (x *extractor) dir(name string) error {
	if name == "" {
		return nil
	}
	return os.MkdirAll(x.path(name), 0o755)
}

// file writes a regular file, counting its bytes against the unpacked limit.
func (x *extractor) file(name string, mode fs.FileMode, r io.Reader) error {
	if name == "" {
		return fmt.Errorf("%w: a file entry names the root", ErrInvalidArchive)
	}
	p := x.path(name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	perm := fs.FileMode(0o644)
	if mode&0o111 != 0 {
		perm = 0o755
	}
	// No symlink exists yet (they come last), so nothing is written through one.
	out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	room := x.limits.MaxUnpackedSize - x.written
	n, err := io.Copy(out, io.LimitReader(r, room+1))
	x.written += n
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if n > room {
		return fmt.Errorf("%w: unpacks to more than %d bytes", ErrArchiveTooLarge, x.limits.MaxUnpackedSize)
	}
	x.files[name] = true
	return nil
}

func (x *extractor) symlink(name, target string) error {
	if name == "" {
		return fmt.Errorf("%w: a symlink entry names the root", ErrInvalidArchive)
	}
	t := strings.ReplaceAll(target, "\\", "/")
	switch {
	case target == "" || strings.ContainsRune(target, 0):
		return fmt.Errorf("%w: symlink %s has an invalid target %q", ErrInvalidArchive, name, target)
	case strings.HasPrefix(t, "/") || windowsDriveRe.MatchString(t):
		return fmt.Errorf("%w: symlink %s points to absolute path %q", manifest.ErrUnsafePath, name, target)
	}
	if j := path.Join(path.Dir(name), t); j == ".." || strings.HasPrefix(j, "../") {
		return fmt.Errorf("%w: symlink %s points outside the package (%q)", manifest.ErrUnsafePath, name, target)
	}
	x.links = append(x.links, symlink{name: name, target: target})
	return nil
}

// hardlink copies an entry already unpacked: a real hard link could tie
// the package to a file outside it.
func (x *extractor) hardlink(name, target string) error {
	t, err := entryName(target)
	if err != nil {
		return err
	}
	if !x.files[t] {
		return fmt.Errorf("%w: hard link %s to %q, which is not a file unpacked before it", ErrInvalidArchive, name, target)
	}
	src, err := os.Open(x.path(t))
	if err != nil {
		return err
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return err
	}
	return x.file(name, fi.Mode(), src)
}

// finish creates the symlinks, then checks that each resolves inside the
// root: lexical checks alone miss a ".." after a link to a shallower dir.
// On failure it removes them again, leaving no way out behind even for a
// caller that keeps dst.
func (x *extractor) finish() (err error) {
	defer func() {
		if err != nil {
			for _, l := range x.links {
				_ = os.Remove(x.path(l.name))
			}
		}
	}()
	for _, l := range x.links {
		p := x.path(l.name)
		if err := x.noLinkInParents(l.name); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.Symlink(l.target, p); err != nil {
			return fmt.Errorf("%w: symlink %s: %v", ErrInvalidArchive, l.name, err)
		}
	}
	for _, l := range x.links {
		real, err := filepath.EvalSymlinks(x.path(l.name))
		if err != nil {
			continue // dangling: refused when the package is zipped
		}
		if rel, err := filepath.Rel(x.root, real); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return fmt.Errorf("%w: symlink %s to %q resolves outside the package", manifest.ErrUnsafePath, l.name, l.target)
		}
	}
	return nil
}

// noLinkInParents refuses a symlink entry whose parent directory is itself
// a symlink created earlier: it would be created somewhere else.
func (x *extractor) noLinkInParents(name string) error {
	dir := path.Dir(name)
	for dir != "." {
		if fi, err := os.Lstat(x.path(dir)); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%w: symlink %s lies under symlink %s", manifest.ErrUnsafePath, name, dir)
		}
		dir = path.Dir(dir)
	}
	return nil
}

func (x *extractor) zip(r io.ReaderAt, size int64) error {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidArchive, err)
	}
	if len(zr.File) > x.limits.MaxEntries {
		return fmt.Errorf("%w: %d entries, the limit is %d", ErrArchiveTooLarge, len(zr.File), x.limits.MaxEntries)
	}
	for _, zf := range zr.File {
		if err := x.count(); err != nil {
			return err
		}
		name, err := entryName(zf.Name)
		if err != nil {
			return err
		}
		mode := zf.Mode()
		switch {
		case mode.IsDir() || strings.HasSuffix(zf.Name, "/"):
			err = x.dir(name)
		case mode&fs.ModeSymlink != 0:
			var target string
			if target, err = readSmall(zf); err == nil {
				err = x.symlink(name, target)
			}
		case mode.IsRegular():
			if zf.UncompressedSize64 > uint64(x.limits.MaxUnpackedSize-x.written) {
				return fmt.Errorf("%w: %s unpacks to %d bytes, more than the %d left of the limit", ErrArchiveTooLarge, zf.Name, zf.UncompressedSize64, x.limits.MaxUnpackedSize-x.written)
			}
			var rc io.ReadCloser
			if rc, err = zf.Open(); err == nil {
				err = x.file(name, mode, rc)
				_ = rc.Close()
			}
		default:
			err = fmt.Errorf("%w: entry %s has unsupported type %s", ErrInvalidArchive, zf.Name, mode.Type())
		}
		if err != nil {
			return wrapRead(err)
		}
	}
	return nil
}

func readSmall(zf *zip.File) (string, error) {
	rc, err := zf.Open()
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 4097))
	if err != nil {
		return "", err
	}
	if len(b) > 4096 {
		return "", fmt.Errorf("%w: symlink %s target is longer than 4096 bytes", ErrInvalidArchive, zf.Name)
	}
	return string(b), nil
}

func (x *extractor) tar(r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidArchive, err)
		}
		if h.Typeflag == tar.TypeXGlobalHeader {
			continue // git archive's pax header carrying the commit id
		}
		if err := x.count(); err != nil {
			return err
		}
		name, err := entryName(h.Name)
		if err != nil {
			return err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			err = x.dir(name)
		case tar.TypeReg: // the reader reports the old TypeRegA as TypeReg
			err = x.file(name, fs.FileMode(h.Mode), tr)
		case tar.TypeSymlink:
			err = x.symlink(name, h.Linkname)
		case tar.TypeLink:
			err = x.hardlink(name, h.Linkname)
		default:
			err = fmt.Errorf("%w: entry %s has unsupported type %q", ErrInvalidArchive, h.Name, h.Typeflag)
		}
		if err != nil {
			return wrapRead(err)
		}
	}
}

// wrapRead marks a decompression or format failure while reading an entry
// as an invalid archive, leaving our own sentinels and file system errors be.
func wrapRead(err error) error {
	switch {
	case errors.Is(err, ErrArchiveTooLarge), errors.Is(err, ErrInvalidArchive), errors.Is(err, manifest.ErrUnsafePath):
		return err
	case errors.Is(err, zip.ErrFormat), errors.Is(err, zip.ErrChecksum), errors.Is(err, zip.ErrAlgorithm),
		errors.Is(err, gzip.ErrChecksum), errors.Is(err, gzip.ErrHeader), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, tar.ErrHeader):
		return fmt.Errorf("%w: %w", ErrInvalidArchive, err)
	}
	var structural bzip2.StructuralError
	if errors.As(err, &structural) {
		return fmt.Errorf("%w: %w", ErrInvalidArchive, err)
	}
	var corrupt flate.CorruptInputError
	var internal flate.InternalError
	if errors.As(err, &corrupt) || errors.As(err, &internal) {
		return fmt.Errorf("%w: %w", ErrInvalidArchive, err)
	}
	return err
}
