package bundle_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/errs"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
)

// errRefused is what memTarget answers where a registry would refuse a push.
var errRefused = errors.New("memtarget: push refused")

// memTarget is an in-memory stand-in for a registry, used only by the fuzz
// targets: a real registry costs milliseconds per input, which fuzzing
// cannot afford. It checks what distribution checks on a push (digest and
// size of blobs, a manifest's digest and that its children exist), keeps
// blob sizes but not blob content, and records every tag written.
type memTarget struct {
	mu     sync.Mutex
	repos  map[string]*memRepo
	tagged []string // "repo:tag", in the order written
	writes int      // blob and manifest pushes accepted
}

type memRepo struct {
	blobs     map[digest.Digest]int64
	manifests map[digest.Digest]memManifest
	tags      map[string]digest.Digest
}

type memManifest struct {
	raw       []byte
	mediaType string
}

func newMemTarget() *memTarget { return &memTarget{repos: map[string]*memRepo{}} }

// clone copies the content (not the records of what was written).
func (m *memTarget) clone() *memTarget {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := newMemTarget()
	for name, r := range m.repos {
		n := &memRepo{blobs: map[digest.Digest]int64{}, manifests: map[digest.Digest]memManifest{}, tags: map[string]digest.Digest{}}
		for k, v := range r.blobs {
			n.blobs[k] = v
		}
		for k, v := range r.manifests {
			n.manifests[k] = v
		}
		for k, v := range r.tags {
			n.tags[k] = v
		}
		c.repos[name] = n
	}
	return c
}

// repo returns the repository, creating it when create is set (else nil if absent).
func (m *memTarget) repo(name string, create bool) *memRepo {
	r := m.repos[name]
	if r == nil && create {
		r = &memRepo{blobs: map[digest.Digest]int64{}, manifests: map[digest.Digest]memManifest{}, tags: map[string]digest.Digest{}}
		m.repos[name] = r
	}
	return r
}

// Tags lists a repository's tags, sorted; an unknown repository has none.
func (m *memTarget) Tags(_ context.Context, repo string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.repo(repo, false)
	if r == nil {
		return nil, nil
	}
	var tags []string
	for t := range r.tags {
		tags = append(tags, t)
	}
	sort.Strings(tags)
	return tags, nil
}

// Manifest returns the manifest a tag points at, or wraps errs.ErrNotFound.
func (m *memTarget) Manifest(_ context.Context, repo, tag string) ([]byte, descriptor.Descriptor, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r := m.repo(repo, false); r != nil {
		if d, ok := r.tags[tag]; ok {
			mm := r.manifests[d]
			return mm.raw, descriptor.Descriptor{MediaType: mm.mediaType, Digest: d, Size: int64(len(mm.raw))}, nil
		}
	}
	return nil, descriptor.Descriptor{}, fmt.Errorf("%s:%s: %w", repo, tag, errs.ErrNotFound)
}

// ManifestByDigest returns a manifest by digest, or wraps errs.ErrNotFound.
func (m *memTarget) ManifestByDigest(_ context.Context, repo string, d digest.Digest) ([]byte, descriptor.Descriptor, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r := m.repo(repo, false); r != nil {
		if mm, ok := r.manifests[d]; ok {
			return mm.raw, descriptor.Descriptor{MediaType: mm.mediaType, Digest: d, Size: int64(len(mm.raw))}, nil
		}
	}
	return nil, descriptor.Descriptor{}, fmt.Errorf("%s@%s: %w", repo, d, errs.ErrNotFound)
}

// ManifestExists reports whether the repository holds a manifest.
func (m *memTarget) ManifestExists(_ context.Context, repo string, d digest.Digest) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.repo(repo, false)
	if r == nil {
		return false, nil
	}
	_, ok := r.manifests[d]
	return ok, nil
}

// BlobExists reports whether the repository holds a blob, with its stored size.
func (m *memTarget) BlobExists(_ context.Context, repo string, d descriptor.Descriptor) (descriptor.Descriptor, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.repo(repo, false)
	if r == nil {
		return d, false, nil
	}
	size, ok := r.blobs[d.Digest]
	if ok {
		d.Size = size
	}
	return d, ok, nil
}

// PutBlob reads the content (never more than the declared size plus one
// byte) and keeps it only if its size and digest are as declared.
func (m *memTarget) PutBlob(_ context.Context, repo string, d descriptor.Descriptor, rdr io.Reader) error {
	if err := d.Digest.Validate(); err != nil {
		return fmt.Errorf("%w: blob digest %q: %v", errRefused, d.Digest, err)
	}
	if d.Size < 0 {
		return fmt.Errorf("%w: blob %s: size %d", errRefused, d.Digest, d.Size)
	}
	v := d.Digest.Algorithm().Digester()
	n, err := io.Copy(v.Hash(), io.LimitReader(rdr, d.Size+1))
	if err != nil {
		return fmt.Errorf("%w: blob %s: %v", errRefused, d.Digest, err)
	}
	if n != d.Size || v.Digest() != d.Digest {
		return fmt.Errorf("%w: blob %s: got %d bytes with digest %s, declared %d", errRefused, d.Digest, n, v.Digest(), d.Size)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.repo(repo, true).blobs[d.Digest] = n
	m.writes++
	return nil
}

// PutManifest stores a manifest whose digest matches its bytes and whose
// config, layers and child manifests the repository already holds.
func (m *memTarget) PutManifest(_ context.Context, repo string, a manifest.Artifact, tag string) error {
	d := a.Descriptor.Digest
	if err := d.Validate(); err != nil {
		return fmt.Errorf("%w: manifest digest %q: %v", errRefused, d, err)
	}
	if len(a.Raw) > manifest.MaxManifestSize || d.Algorithm().FromBytes(a.Raw) != d {
		return fmt.Errorf("%w: manifest %s: %d bytes that do not match the digest", errRefused, d, len(a.Raw))
	}
	var body struct {
		MediaType string                  `json:"mediaType"`
		Config    *descriptor.Descriptor  `json:"config"`
		Layers    []descriptor.Descriptor `json:"layers"`
		Manifests []descriptor.Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(a.Raw, &body); err != nil {
		return fmt.Errorf("%w: manifest %s: %v", errRefused, d, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.repo(repo, true)
	blobs := body.Layers
	if body.Config != nil {
		blobs = append(blobs, *body.Config)
	}
	for _, b := range blobs {
		if _, ok := r.blobs[b.Digest]; !ok {
			return fmt.Errorf("%w: manifest %s: blob %s unknown in %s", errRefused, d, b.Digest, repo)
		}
	}
	for _, c := range body.Manifests {
		if _, ok := r.manifests[c.Digest]; !ok {
			return fmt.Errorf("%w: manifest %s: child manifest %s unknown in %s", errRefused, d, c.Digest, repo)
		}
	}
	mt := a.Descriptor.MediaType
	if mt == "" {
		mt = body.MediaType
	}
	r.manifests[d] = memManifest{raw: append([]byte(nil), a.Raw...), mediaType: mt}
	m.writes++
	if tag != "" {
		r.tags[tag] = d
		m.tagged = append(m.tagged, repo+":"+tag)
	}
	return nil
}

// closureMissing lists what a tagged manifest references (recursively)
// that the repository lacks: an incomplete version OpenTofu would see.
func (m *memTarget) closureMissing(repo, tag string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.repo(repo, false)
	if r == nil {
		return []string{"repository " + repo}
	}
	var missing []string
	var walk func(d digest.Digest)
	walk = func(d digest.Digest) {
		mm, ok := r.manifests[d]
		if !ok {
			missing = append(missing, "manifest "+d.String())
			return
		}
		var body struct {
			Config    *descriptor.Descriptor  `json:"config"`
			Layers    []descriptor.Descriptor `json:"layers"`
			Manifests []descriptor.Descriptor `json:"manifests"`
		}
		_ = json.Unmarshal(mm.raw, &body)
		blobs := body.Layers
		if body.Config != nil {
			blobs = append(blobs, *body.Config)
		}
		for _, b := range blobs {
			if _, ok := r.blobs[b.Digest]; !ok {
				missing = append(missing, "blob "+b.Digest.String())
			}
		}
		for _, c := range body.Manifests {
			walk(c.Digest)
		}
	}
	d, ok := r.tags[tag]
	if !ok {
		return []string{"tag " + tag}
	}
	walk(d)
	return missing
}
