package bundle

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient/types/descriptor"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
)

// stage is the exporter's publisher: a content-addressed directory the
// executor copies into, with the baseline standing in for what the inside
// registry already holds, so only what the inside lacks is downloaded.
type stage struct {
	dir      string
	baseline *Baseline

	mu        sync.Mutex
	manifests map[digest.Digest]stagedManifest
	tags      map[string]digest.Digest // repo + "\x00" + tag
}

type stagedManifest struct {
	desc    descriptor.Descriptor
	subject digest.Digest
}

func newStage(dir string, b *Baseline) (*stage, error) {
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return nil, err
	}
	return &stage{dir: dir, baseline: b, manifests: map[digest.Digest]stagedManifest{}, tags: map[string]digest.Digest{}}, nil
}

func (s *stage) path(d digest.Digest) string {
	return filepath.Join(s.dir, "blobs", d.Algorithm().String(), d.Encoded())
}

// BlobExists answers from the baseline first: a blob the inside holds is
// neither downloaded nor put in the bundle.
func (s *stage) BlobExists(_ context.Context, repo string, d descriptor.Descriptor) (descriptor.Descriptor, bool, error) {
	if got, ok := s.baseline.Has(repo, d.Digest); ok {
		d.Size = got.Size
		return d, true, nil
	}
	fi, err := os.Stat(s.path(d.Digest))
	if errors.Is(err, fs.ErrNotExist) {
		return d, false, nil
	}
	if err != nil {
		return d, false, err
	}
	d.Size = fi.Size()
	return d, true, nil
}

// PutBlob writes a blob, checking its digest, through a temp file and a rename.
func (s *stage) PutBlob(_ context.Context, _ string, d descriptor.Descriptor, rdr io.Reader) error {
	return s.write(d, rdr)
}

func (s *stage) write(d descriptor.Descriptor, rdr io.Reader) error {
	tmp, err := os.CreateTemp(filepath.Dir(s.path(d.Digest)), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), rdr)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("staging %s: %w", d.Digest, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != d.Digest.Encoded() || (d.Size > 0 && n != d.Size) {
		return fmt.Errorf("staging %s: %w: got sha256:%s (%d bytes)", d.Digest, ErrCorrupt, got, n)
	}
	return os.Rename(tmp.Name(), s.path(d.Digest))
}

// PutManifest stages the exact manifest bytes and remembers the tag.
func (s *stage) PutManifest(_ context.Context, repo string, a manifest.Artifact, tag string) error {
	if err := s.write(a.Descriptor, bytes.NewReader(a.Raw)); err != nil {
		return err
	}
	m, err := manifest.Parse(a.Raw)
	if err != nil {
		return fmt.Errorf("staging %s: %w", a.Descriptor.Digest, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sm := stagedManifest{desc: descriptor.Descriptor{MediaType: a.Descriptor.MediaType, Digest: a.Descriptor.Digest, Size: a.Descriptor.Size, ArtifactType: a.Descriptor.ArtifactType}}
	if m.Subject != nil {
		sm.subject = m.Subject.Digest
	}
	s.manifests[a.Descriptor.Digest] = sm
	if tag != "" {
		s.tags[repo+"\x00"+tag] = a.Descriptor.Digest
	}
	return nil
}

// staged reports whether the stage holds d itself (not merely the baseline).
func (s *stage) staged(d digest.Digest) bool {
	_, err := os.Stat(s.path(d))
	return err == nil
}

// children lists what a staged manifest references, children first order.
func (s *stage) children(d digest.Digest) ([]descriptor.Descriptor, error) {
	raw, err := os.ReadFile(s.path(d))
	if err != nil {
		return nil, err
	}
	out, err := manifest.Successors(raw)
	if err != nil {
		return nil, fmt.Errorf("staged manifest %s: %w", d, err)
	}
	return out, nil
}

// referrers returns staged manifests whose subject is d, sorted by digest.
func (s *stage) referrers(d digest.Digest) []descriptor.Descriptor {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []descriptor.Descriptor
	for _, m := range s.manifests {
		if m.subject == d {
			out = append(out, m.desc)
		}
	}
	sortDescriptors(out)
	return out
}

// isManifest reports whether d was staged as a manifest.
func (s *stage) isManifest(d digest.Digest) (descriptor.Descriptor, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.manifests[d]
	return m.desc, ok
}
