package bundle

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/atomicfile"
)

// PartsSuffix is appended to the bundle path to name the part manifest.
const PartsSuffix = ".parts.json"

// partName names part i of the bundle at path.
func partName(path string, i int) string { return fmt.Sprintf("%s.%03d", filepath.Base(path), i) }

// writeParts splits the tar stream into files of at most maxPart bytes.
// Parts are written under temporary names and renamed only when all are
// complete; the part manifest is written last.
func (e *Exported) writeParts(path string, maxPart int64) (err error) {
	pw := &partWriter{path: path, max: maxPart}
	defer func() {
		if err != nil {
			pw.abort()
		}
	}()
	if err = e.WriteTar(pw); err != nil {
		return err
	}
	if err = pw.finish(); err != nil {
		return err
	}
	manifest := Parts{Format: PartsFormat, FormatVersion: BundleFormatVersion, Parts: pw.parts}
	raw, err := json.MarshalIndent(manifest, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteBytes(path+PartsSuffix, 0o644, append(raw, '\n'))
}

type partWriter struct {
	path  string
	max   int64
	cur   *os.File
	n     int64
	h     hash.Hash
	parts []Part
	tmps  []string
}

func (p *partWriter) Write(b []byte) (int, error) {
	written := 0
	for len(b) > 0 {
		if p.cur == nil || p.n == p.max {
			if err := p.next(); err != nil {
				return written, err
			}
		}
		chunk := b
		if room := p.max - p.n; int64(len(chunk)) > room {
			chunk = chunk[:room]
		}
		n, err := p.cur.Write(chunk)
		p.h.Write(chunk[:n])
		p.n += int64(n)
		written += n
		if err != nil {
			return written, err
		}
		b = b[n:]
	}
	return written, nil
}

func (p *partWriter) next() error {
	if err := p.closeCurrent(); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(p.path), "."+partName(p.path, len(p.parts))+".tmp-*")
	if err != nil {
		return err
	}
	p.cur, p.n, p.h = f, 0, sha256.New()
	p.tmps = append(p.tmps, f.Name())
	return nil
}

func (p *partWriter) closeCurrent() error {
	if p.cur == nil {
		return nil
	}
	if err := p.cur.Sync(); err != nil {
		return err
	}
	if err := p.cur.Close(); err != nil {
		return err
	}
	p.parts = append(p.parts, Part{Name: partName(p.path, len(p.parts)), Size: p.n, SHA256: hex.EncodeToString(p.h.Sum(nil))})
	p.cur = nil
	return nil
}

func (p *partWriter) finish() error {
	if err := p.closeCurrent(); err != nil {
		return err
	}
	for i, tmp := range p.tmps {
		if err := os.Rename(tmp, filepath.Join(filepath.Dir(p.path), p.parts[i].Name)); err != nil {
			return err
		}
	}
	p.tmps = nil
	return nil
}

func (p *partWriter) abort() {
	if p.cur != nil {
		_ = p.cur.Close()
	}
	for _, tmp := range p.tmps {
		_ = os.Remove(tmp)
	}
}

// OpenBundle opens a bundle for streaming: a single tar file, a part
// manifest (PATH.parts.json), the first part's base path, or a directory
// holding exactly one part manifest. Parts are read in sequence, never
// concatenated on disk; each part's size and sha256 are checked as it is
// consumed, and every listed part must exist before reading starts.
func OpenBundle(path string) (io.ReadCloser, error) {
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.IsDir():
		matches, _ := filepath.Glob(filepath.Join(path, "*"+PartsSuffix))
		if len(matches) != 1 {
			return nil, fmt.Errorf("%s: %w: want exactly one *%s in the directory, found %d", path, ErrMissingPart, PartsSuffix, len(matches))
		}
		return openParts(matches[0])
	case err == nil && strings.HasSuffix(path, PartsSuffix):
		return openParts(path)
	case err == nil && !fi.Mode().IsRegular():
		return nil, fmt.Errorf("%s: %w: not a regular file (%s)", path, ErrUnsafeEntry, fi.Mode().Type())
	case err == nil:
		return os.Open(path)
	case errors.Is(err, fs.ErrNotExist):
		if _, perr := os.Stat(path + PartsSuffix); perr == nil {
			return openParts(path + PartsSuffix)
		}
	}
	return nil, err
}

func openParts(manifestPath string) (io.ReadCloser, error) {
	raw, err := os.ReadFile(manifestPath)
	if err != nil {
		return nil, err
	}
	var ps Parts
	if err := json.Unmarshal(raw, &ps); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", manifestPath, ErrFormat, err)
	}
	if ps.Format != PartsFormat || ps.FormatVersion != BundleFormatVersion {
		return nil, fmt.Errorf("%s: %w: parts format %q version %d", manifestPath, ErrFormat, ps.Format, ps.FormatVersion)
	}
	dir := filepath.Dir(manifestPath)
	var missing []string
	names := map[string]bool{}
	for _, p := range ps.Parts {
		if p.Name != filepath.Base(p.Name) || p.Name == "." || p.Name == ".." || p.Name == "" {
			return nil, fmt.Errorf("%s: %w: part name %q", manifestPath, ErrUnsafeEntry, p.Name)
		}
		if names[p.Name] {
			// Each part is read exactly once: a part listed twice could
			// replay content the metadata already accounted for.
			return nil, fmt.Errorf("%s: %w: part %q is listed twice", manifestPath, ErrUnsafeEntry, p.Name)
		}
		names[p.Name] = true
		fi, err := os.Lstat(filepath.Join(dir, p.Name))
		if err == nil && !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("%s: %w: part %q is not a regular file (%s)", manifestPath, ErrUnsafeEntry, p.Name, fi.Mode().Type())
		}
		if err != nil {
			missing = append(missing, p.Name)
		} else if fi.Size() != p.Size {
			return nil, fmt.Errorf("%s: %w: part %s is %d bytes, the part manifest says %d", manifestPath, ErrCorrupt, p.Name, fi.Size(), p.Size)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s: %w: %s", manifestPath, ErrMissingPart, strings.Join(missing, ", "))
	}
	return &partReader{dir: dir, parts: ps.Parts}, nil
}

// partReader reads parts one after the other, checking each as it ends.
type partReader struct {
	dir   string
	parts []Part
	i     int
	cur   *os.File
	h     hash.Hash
	n     int64
}

func (r *partReader) Read(b []byte) (int, error) {
	for {
		if r.cur == nil {
			if r.i == len(r.parts) {
				return 0, io.EOF
			}
			f, err := os.Open(filepath.Join(r.dir, r.parts[r.i].Name))
			if err != nil {
				return 0, fmt.Errorf("%w: %s: %v", ErrMissingPart, r.parts[r.i].Name, err)
			}
			r.cur, r.h, r.n = f, sha256.New(), 0
		}
		n, err := r.cur.Read(b)
		r.h.Write(b[:n])
		r.n += int64(n)
		if err == io.EOF {
			p := r.parts[r.i]
			_ = r.cur.Close()
			r.cur = nil
			r.i++
			if got := hex.EncodeToString(r.h.Sum(nil)); got != p.SHA256 || r.n != p.Size {
				return n, fmt.Errorf("%w: part %s: sha256 %s (%d bytes), the part manifest says %s (%d bytes)", ErrCorrupt, p.Name, got, r.n, p.SHA256, p.Size)
			}
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

// End reads whatever follows the end of the tar: the rest of the current
// part and every part after it, checking each as Read does, so a part
// listed but never reached is checked too. Anything but tar padding (zero
// bytes) there is refused.
func (r *partReader) End() error {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		for _, b := range buf[:n] {
			if b != 0 {
				return fmt.Errorf("%w: data after the end of the tar (part %s)", ErrCorrupt, r.parts[min(r.i, len(r.parts)-1)].Name)
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (r *partReader) Close() error {
	if r.cur != nil {
		return r.cur.Close()
	}
	return nil
}

// Diagnose reads the rest of the current part and reports whether it is
// corrupt, so an import that failed mid-part can name the part as the cause
// rather than whatever the damaged bytes broke.
func (r *partReader) Diagnose() error {
	if r.cur == nil {
		return nil
	}
	p := r.parts[r.i]
	if _, err := io.Copy(r.h, r.cur); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrMissingPart, p.Name, err)
	}
	if got := hex.EncodeToString(r.h.Sum(nil)); got != p.SHA256 {
		return fmt.Errorf("%w: part %s: sha256 %s, the part manifest says %s", ErrCorrupt, p.Name, got, p.SHA256)
	}
	return nil
}
