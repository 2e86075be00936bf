// Command floor is the physical floor of a first sync on this machine: it
// moves the same provider packages from the test upstream into an OCI
// registry with nothing but plain HTTP clients, in parallel, hashing each
// byte once on its way through and verifying nothing. No spool file, no
// signature check, no retries: the best time any mirroring tool could
// reach with the same upstream, registry, bytes and CPU.
//
// It reads a job file (JSON, see jobFile) naming the registry and, per
// provider version, the repository, tag and package URLs; for each package
// it streams GET url into a blob upload (POST, then PATCH with the body as
// it arrives, then PUT ?digest= with the hash computed in flight), pushes
// the platform manifest, and once a version's packages are in, its index
// with the tag. The manifests are the ones tofu-oci-mirror builds, so the
// result is a mirror OpenTofu can install from.
//
//	floor -jobs jobs.json [-concurrency 4]
//
// It prints one line: packages, bytes, seconds and MB/s.
//
// With -upload-bundle it is the floor of an import instead (see upload.go):
// the blobs of a bundle written by export, pushed from the file into the
// registry of the plan's target, then the manifests and tags.
//
//	floor -upload-bundle bundle.tar -plan mirror.yaml [-concurrency 4]
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/regclient/regclient/types/descriptor"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
)

// jobFile is what the benchmark driver writes for floor.
type jobFile struct {
	// Registry is "host:port" of a plain-HTTP registry.
	Registry string `json:"registry"`
	// CAFile trusts the upstream's test CA; empty uses the system roots.
	CAFile   string       `json:"ca_file"`
	Versions []versionJob `json:"versions"`
}

type versionJob struct {
	Repository string       `json:"repository"`
	Tag        string       `json:"tag"`
	Packages   []packageJob `json:"packages"`
}

type packageJob struct {
	// URL is the zip's absolute download URL.
	URL      string `json:"url"`
	OS       string `json:"os"`
	Arch     string `json:"arch"`
	Filename string `json:"filename"`
}

var errStatus = errors.New("unexpected HTTP status")

func main() {
	jobsPath := flag.String("jobs", "", "job file (JSON) written by the benchmark driver")
	bundlePath := flag.String("upload-bundle", "", "bundle (tar) whose blobs to push, instead of -jobs")
	planPath := flag.String("plan", "", "with -upload-bundle: the plan naming the registry and the repositories")
	concurrency := flag.Int("concurrency", 4, "packages (blobs) in flight at once")
	flag.Parse()
	if (*jobsPath == "") == (*bundlePath == "") || *bundlePath != "" && *planPath == "" || *concurrency < 1 {
		fmt.Fprintln(os.Stderr, "usage: floor -jobs FILE [-concurrency N]\n       floor -upload-bundle FILE -plan FILE [-concurrency N]")
		os.Exit(2)
	}
	var err error
	if *bundlePath != "" {
		err = runUpload(context.Background(), *bundlePath, *planPath, *concurrency)
	} else {
		err = run(context.Background(), *jobsPath, *concurrency)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, jobsPath string, concurrency int) error {
	raw, err := os.ReadFile(jobsPath)
	if err != nil {
		return err
	}
	var jobs jobFile
	if err := json.Unmarshal(raw, &jobs); err != nil {
		return fmt.Errorf("%s: %w", jobsPath, err)
	}
	f, err := newFloor(jobs, concurrency)
	if err != nil {
		return err
	}
	start := time.Now()
	n, err := f.mirror(ctx, jobs.Versions)
	if err != nil {
		return err
	}
	secs := time.Since(start).Seconds()
	fmt.Printf("floor: %d packages, %d bytes in %.3f s: %.1f MB/s\n", n, f.bytes.Load(), secs, float64(f.bytes.Load())/1e6/secs)
	return nil
}

type floor struct {
	registry    string
	client      *http.Client
	concurrency int
	bytes       atomic.Int64
}

// newFloor speaks HTTP/1.1 to both sides even where the upstream offers
// HTTP/2: one connection per download in flight, so parallel downloads add
// up on a link that caps each connection's bandwidth, rather than sharing
// one multiplexed connection.
func newFloor(jobs jobFile, concurrency int) (*floor, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 2 * concurrency
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetHTTP1(true)
	if jobs.CAFile != "" {
		pem, err := os.ReadFile(jobs.CAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificates", jobs.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	return &floor{registry: jobs.Registry, client: &http.Client{Transport: tr}, concurrency: concurrency}, nil
}

// mirror copies every package with concurrency workers; a version's index
// is pushed by whichever worker finishes its last package.
func (f *floor) mirror(ctx context.Context, versions []versionJob) (int, error) {
	type work struct {
		v   *versionJob
		i   int
		out []manifest.PlatformManifest
		rem *atomic.Int32
	}
	for _, repo := range uniqueRepos(versions) {
		empty := manifest.EmptyConfig()
		if err := f.putBlob(ctx, repo, empty.Digest.String(), descriptor.EmptyData); err != nil {
			return 0, err
		}
	}
	queue := make(chan work)
	errs := make(chan error, f.concurrency)
	var wg gosync.WaitGroup
	var done atomic.Int64
	for range f.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for w := range queue {
				p := w.v.Packages[w.i]
				pm, err := f.copyPackage(ctx, w.v.Repository, p)
				if err != nil {
					errs <- fmt.Errorf("%s:%s %s_%s: %w", w.v.Repository, w.v.Tag, p.OS, p.Arch, err)
					return
				}
				w.out[w.i] = pm
				done.Add(1)
				if w.rem.Add(-1) == 0 {
					index, err := manifest.ProviderIndex(w.out)
					if err == nil {
						err = f.putManifest(ctx, w.v.Repository, w.v.Tag, index)
					}
					if err != nil {
						errs <- fmt.Errorf("%s:%s index: %w", w.v.Repository, w.v.Tag, err)
						return
					}
				}
			}
		}()
	}
	var firstErr error
feed:
	for vi := range versions {
		v := &versions[vi]
		out := make([]manifest.PlatformManifest, len(v.Packages))
		rem := &atomic.Int32{}
		rem.Store(int32(len(v.Packages)))
		for i := range v.Packages {
			select {
			case queue <- work{v: v, i: i, out: out, rem: rem}:
			case firstErr = <-errs:
				break feed
			}
		}
	}
	close(queue)
	wg.Wait()
	if firstErr == nil {
		select {
		case firstErr = <-errs:
		default:
		}
	}
	return int(done.Load()), firstErr
}

func uniqueRepos(versions []versionJob) []string {
	seen := map[string]bool{}
	var repos []string
	for _, v := range versions {
		if !seen[v.Repository] {
			seen[v.Repository] = true
			repos = append(repos, v.Repository)
		}
	}
	return repos
}

// copyPackage streams one zip from upstream into a blob upload, hashing it
// on the way, then pushes its platform manifest.
func (f *floor) copyPackage(ctx context.Context, repo string, p packageJob) (manifest.PlatformManifest, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL, nil)
	if err != nil {
		return manifest.PlatformManifest{}, err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return manifest.PlatformManifest{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return manifest.PlatformManifest{}, fmt.Errorf("GET %s: %w %s", p.URL, errStatus, resp.Status)
	}
	loc, err := f.startUpload(ctx, repo)
	if err != nil {
		return manifest.PlatformManifest{}, err
	}
	h := sha256.New()
	counted := &countingReader{r: io.TeeReader(resp.Body, h)}
	patch, err := http.NewRequestWithContext(ctx, http.MethodPatch, loc.String(), counted)
	if err != nil {
		return manifest.PlatformManifest{}, err
	}
	patch.Header.Set("Content-Type", "application/octet-stream")
	if resp.ContentLength >= 0 {
		patch.ContentLength = resp.ContentLength
	}
	presp, err := f.expect(patch, http.StatusAccepted)
	if err != nil {
		return manifest.PlatformManifest{}, err
	}
	if loc, err = location(loc, presp); err != nil {
		return manifest.PlatformManifest{}, err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	q := loc.Query()
	q.Set("digest", "sha256:"+sum)
	loc.RawQuery = q.Encode()
	put, err := http.NewRequestWithContext(ctx, http.MethodPut, loc.String(), nil)
	if err != nil {
		return manifest.PlatformManifest{}, err
	}
	if _, err := f.expect(put, http.StatusCreated); err != nil {
		return manifest.PlatformManifest{}, err
	}
	f.bytes.Add(counted.n)
	zip, err := manifest.BlobDescriptor(manifest.ZipLayerMediaType, sum, counted.n)
	if err != nil {
		return manifest.PlatformManifest{}, err
	}
	target, err := manifest.ProviderTarget(zip, p.Filename)
	if err != nil {
		return manifest.PlatformManifest{}, err
	}
	if err := f.putManifest(ctx, repo, "", target); err != nil {
		return manifest.PlatformManifest{}, err
	}
	return manifest.PlatformManifest{OS: p.OS, Arch: p.Arch, Manifest: target.Descriptor}, nil
}

// putBlob uploads a small blob: POST, then one PUT with the content.
func (f *floor) putBlob(ctx context.Context, repo, digest string, data []byte) error {
	loc, err := f.startUpload(ctx, repo)
	if err != nil {
		return err
	}
	q := loc.Query()
	q.Set("digest", digest)
	loc.RawQuery = q.Encode()
	put, err := http.NewRequestWithContext(ctx, http.MethodPut, loc.String(), bytes.NewReader(data))
	if err != nil {
		return err
	}
	put.Header.Set("Content-Type", "application/octet-stream")
	_, err = f.expect(put, http.StatusCreated)
	return err
}

func (f *floor) startUpload(ctx context.Context, repo string) (*url.URL, error) {
	base := &url.URL{Scheme: "http", Host: f.registry, Path: "/v2/" + repo + "/blobs/uploads/"}
	post, err := http.NewRequestWithContext(ctx, http.MethodPost, base.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := f.expect(post, http.StatusAccepted)
	if err != nil {
		return nil, err
	}
	return location(base, resp)
}

// putManifest pushes a by its digest, or under tag when tag is not empty.
func (f *floor) putManifest(ctx context.Context, repo, tag string, a manifest.Artifact) error {
	ref := tag
	if ref == "" {
		ref = a.Descriptor.Digest.String()
	}
	u := &url.URL{Scheme: "http", Host: f.registry, Path: "/v2/" + repo + "/manifests/" + ref}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u.String(), bytes.NewReader(a.Raw))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", a.Descriptor.MediaType)
	_, err = f.expect(req, http.StatusCreated)
	return err
}

// expect sends req and drains the answer, failing unless it has status want.
func (f *floor) expect(req *http.Request, want int) (*http.Response, error) {
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	_ = resp.Body.Close()
	if resp.StatusCode != want {
		return nil, fmt.Errorf("%s %s: %w %s: %s", req.Method, req.URL.Redacted(), errStatus, resp.Status, strings.TrimSpace(string(body)))
	}
	return resp, nil
}

// location resolves the Location header of an upload answer against base.
func location(base *url.URL, resp *http.Response) (*url.URL, error) {
	l := resp.Header.Get("Location")
	if l == "" {
		return nil, fmt.Errorf("%s %s: no Location header", resp.Request.Method, resp.Request.URL.Redacted())
	}
	u, err := url.Parse(l)
	if err != nil {
		return nil, err
	}
	return base.ResolveReference(u), nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
