package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/bundle"
)

// The upload floor (-upload-bundle) is the floor of an import: the blobs
// a bundle carries pushed straight from the bundle file into the registry
// by plain parallel HTTP clients (POST, then one monolithic PUT ?digest=
// whose body is the tar entry's bytes read from the file by offset), then
// each version's manifests by digest and its tag once its blobs landed.
// Nothing is hashed, verified or asked first: the digests are the entry
// names, and the registry is known to be empty.

// bundleEntry is where one blob lies in the bundle file.
type bundleEntry struct {
	offset, size int64
}

// uploadArtifact is one version of the bundle with the repository the plan
// gives it, and the blob uploads it still waits for.
type uploadArtifact struct {
	bundle.Artifact
	repo string
	left atomic.Int32
}

// blobUpload is one blob pushed to one repository, and the versions
// waiting for it there.
type blobUpload struct {
	repo  string
	ref   bundle.BlobRef
	entry bundleEntry
	users []*uploadArtifact
}

func runUpload(ctx context.Context, bundlePath, planPath string, concurrency int) error {
	cfg, err := config.Load(planPath)
	if err != nil {
		return err
	}
	if _, layout := cfg.Target.LayoutDir(); layout {
		return fmt.Errorf("%s: the upload floor needs a registry target", planPath)
	}
	f, err := os.Open(bundlePath)
	if err != nil {
		return err
	}
	defer f.Close()
	meta, entries, manifests, err := scanBundle(f)
	if err != nil {
		return fmt.Errorf("%s: %w", bundlePath, err)
	}
	arts, err := uploadArtifacts(cfg, meta)
	if err != nil {
		return err
	}
	fl, err := newFloor(jobFile{Registry: cfg.Target.Registry}, concurrency)
	if err != nil {
		return err
	}
	start := time.Now()
	n, err := fl.upload(ctx, f, arts, entries, manifests)
	if err != nil {
		return err
	}
	secs := time.Since(start).Seconds()
	fmt.Printf("upload floor: %d blobs, %d bytes in %.3f s: %.1f MB/s\n", n, fl.bytes.Load(), secs, float64(fl.bytes.Load())/1e6/secs)
	return nil
}

// scanBundle reads the metadata and every entry's header, skipping the
// data (the file seeks), and keeps the manifests, which are small.
func scanBundle(f *os.File) (*bundle.Metadata, map[digest.Digest]bundleEntry, map[digest.Digest][]byte, error) {
	pos := &seekCounter{f: f}
	tr := tar.NewReader(pos)
	hdr, err := tr.Next()
	if err != nil {
		return nil, nil, nil, err
	}
	if hdr.Name != bundle.MetadataFile {
		return nil, nil, nil, fmt.Errorf("first entry %s, want %s", hdr.Name, bundle.MetadataFile)
	}
	var meta bundle.Metadata
	if err := json.NewDecoder(tr).Decode(&meta); err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", bundle.MetadataFile, err)
	}
	isManifest := map[digest.Digest]bool{}
	for _, a := range meta.Artifacts {
		for _, b := range a.Blobs {
			isManifest[b.Digest] = isManifest[b.Digest] || b.Manifest
		}
	}
	entries := map[digest.Digest]bundleEntry{}
	manifests := map[digest.Digest][]byte{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, nil, err
		}
		name, ok := strings.CutPrefix(hdr.Name, "blobs/sha256/")
		if !ok {
			continue
		}
		d := digest.NewDigestFromEncoded(digest.SHA256, name)
		entries[d] = bundleEntry{offset: pos.offset, size: hdr.Size}
		if isManifest[d] {
			raw, err := io.ReadAll(tr)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("%s: %w", hdr.Name, err)
			}
			manifests[d] = raw
		}
	}
	return &meta, entries, manifests, nil
}

// uploadArtifacts gives each artifact the repository the plan renders for
// it.
func uploadArtifacts(cfg *config.Config, meta *bundle.Metadata) ([]*uploadArtifact, error) {
	var out []*uploadArtifact
	for _, a := range meta.Artifacts {
		repo := ""
		for _, p := range cfg.Providers {
			if p.Source.String() == a.Address {
				repo = p.Repository
			}
		}
		for _, m := range cfg.Modules {
			if strings.EqualFold(m.Source.String(), a.Address) {
				repo = m.Repository
			}
		}
		if repo == "" {
			return nil, fmt.Errorf("%s: the plan %s has no entry for it", a.Identity(), cfg.Path)
		}
		out = append(out, &uploadArtifact{Artifact: a, repo: repo})
	}
	return out, nil
}

// upload pushes every blob the bundle carries with f.concurrency workers;
// whichever worker lands a version's last blob pushes its manifests (in
// the bundle's push order, children first) and its tag.
func (f *floor) upload(ctx context.Context, file *os.File, arts []*uploadArtifact, entries map[digest.Digest]bundleEntry, manifests map[digest.Digest][]byte) (int, error) {
	uploads := map[string]*blobUpload{}
	var order []*blobUpload
	for _, a := range arts {
		for _, b := range a.Blobs {
			if !b.Inside || b.Manifest {
				continue
			}
			e, ok := entries[b.Digest]
			if !ok {
				return 0, fmt.Errorf("%s: blob %s is not in the bundle", a.Identity(), b.Digest)
			}
			k := a.repo + "@" + b.Digest.String()
			u := uploads[k]
			if u == nil {
				u = &blobUpload{repo: a.repo, ref: b, entry: e}
				uploads[k] = u
				order = append(order, u)
			}
			u.users = append(u.users, a)
			a.left.Add(1)
		}
	}
	var wg gosync.WaitGroup
	var once gosync.Once
	var firstErr error
	fail := func(err error) { once.Do(func() { firstErr = err }) }
	var done atomic.Int64
	queue := make(chan *blobUpload)
	for range f.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range queue {
				if err := f.putFileBlob(ctx, u.repo, u.ref.Digest, io.NewSectionReader(file, u.entry.offset, u.entry.size), u.entry.size); err != nil {
					fail(fmt.Errorf("%s: blob %s: %w", u.repo, u.ref.Digest, err))
					continue
				}
				done.Add(1)
				for _, a := range u.users {
					if a.left.Add(-1) == 0 {
						if err := f.publish(ctx, a, manifests); err != nil {
							fail(err)
						}
					}
				}
			}
		}()
	}
	for _, u := range order {
		queue <- u
	}
	close(queue)
	wg.Wait()
	for _, a := range arts {
		if firstErr == nil && !hasBlobs(a) {
			// A version made of manifests only (its blobs in the
			// baseline): no upload published it.
			if err := f.publish(ctx, a, manifests); err != nil {
				fail(err)
			}
		}
	}
	return int(done.Load()), firstErr
}

// hasBlobs reports whether a waits for any blob upload.
func hasBlobs(a *uploadArtifact) bool {
	for _, b := range a.Blobs {
		if b.Inside && !b.Manifest {
			return true
		}
	}
	return false
}

// publish pushes a's manifests by digest and then its tag.
func (f *floor) publish(ctx context.Context, a *uploadArtifact, manifests map[digest.Digest][]byte) error {
	for _, b := range a.Blobs {
		if !b.Inside || !b.Manifest {
			continue
		}
		raw, ok := manifests[b.Digest]
		if !ok {
			return fmt.Errorf("%s: manifest %s is not in the bundle", a.Identity(), b.Digest)
		}
		if err := f.putRawManifest(ctx, a.repo, b.Digest.String(), b.MediaType, raw); err != nil {
			return fmt.Errorf("%s: %w", a.Identity(), err)
		}
	}
	raw, ok := manifests[a.Manifest.Digest]
	if !ok {
		return fmt.Errorf("%s: manifest %s is not in the bundle", a.Identity(), a.Manifest.Digest)
	}
	if err := f.putRawManifest(ctx, a.repo, a.Tag, a.Manifest.MediaType, raw); err != nil {
		return fmt.Errorf("%s: tag %s: %w", a.Identity(), a.Tag, err)
	}
	return nil
}

// putFileBlob uploads size bytes of body as blob d: POST, then one PUT
// ?digest= with the body.
func (f *floor) putFileBlob(ctx context.Context, repo string, d digest.Digest, body io.Reader, size int64) error {
	loc, err := f.startUpload(ctx, repo)
	if err != nil {
		return err
	}
	q := loc.Query()
	q.Set("digest", d.String())
	loc.RawQuery = q.Encode()
	put, err := newPut(ctx, loc, body, size)
	if err != nil {
		return err
	}
	put.Header.Set("Content-Type", "application/octet-stream")
	if _, err = f.expect(put, http.StatusCreated); err != nil {
		return err
	}
	f.bytes.Add(size)
	return nil
}

// putRawManifest pushes raw under ref (a digest or a tag).
func (f *floor) putRawManifest(ctx context.Context, repo, ref, mediaType string, raw []byte) error {
	u := &url.URL{Scheme: "http", Host: f.registry, Path: "/v2/" + repo + "/manifests/" + ref}
	req, err := newPut(ctx, u, bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", mediaType)
	_, err = f.expect(req, http.StatusCreated)
	return err
}

// newPut is a PUT of size bytes of body to u.
func newPut(ctx context.Context, u *url.URL, body io.Reader, size int64) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u.String(), body)
	if err != nil {
		return nil, err
	}
	req.ContentLength = size // a section of a file: not known to net/http
	return req, nil
}

// seekCounter reads a file and knows the offset it reached, seeking when
// archive/tar skips an entry's data.
type seekCounter struct {
	f      *os.File
	offset int64
}

func (s *seekCounter) Read(b []byte) (int, error) {
	n, err := s.f.Read(b)
	s.offset += int64(n)
	return n, err
}

func (s *seekCounter) Seek(offset int64, whence int) (int64, error) {
	n, err := s.f.Seek(offset, whence)
	if err == nil {
		s.offset = n
	}
	return n, err
}
