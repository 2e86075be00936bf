package target

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient"
	rcconfig "github.com/regclient/regclient/config"
	"github.com/regclient/regclient/scheme"
	"github.com/regclient/regclient/scheme/ocidir"
	"github.com/regclient/regclient/scheme/reg"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/errs"
	rcmanifest "github.com/regclient/regclient/types/manifest"
	"github.com/regclient/regclient/types/ref"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
)

// Target is the OCI registry (or local OCI layout directory) being stocked,
// through regclient. All repository arguments are names rendered from the
// plan's templates. It implements every interface of this package.
type Target struct {
	rc     *regclient.RegClient
	host   string // "host:port" of a registry; empty for a layout
	layout string // directory of the OCI layouts, one per repository; empty for a registry
	prov   *ProvenanceStore
	logger *slog.Logger
	// uploads is what this run learnt about blob uploads (a body limit).
	uploads uploads
	// deleteProbes caches, per repository, whether deletes are refused
	// (an error, or nil when allowed); see DeleteTag.
	deleteProbes sync.Map
}

// Option configures [Open].
type Option func(*options)

type options struct {
	logger        *slog.Logger
	userAgent     string
	dockerCfg     string
	authFiles     []string
	regClientOpts []regclient.Opt
	requests      int
}

// WithLogger sends regclient's logs to l.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// WithUserAgent sets the User-Agent sent to the registry.
func WithUserAgent(ua string) Option {
	return func(o *options) { o.userAgent = ua }
}

// WithDockerConfig reads registry credentials from this Docker config.json
// instead of the default locations ($DOCKER_CONFIG, ~/.docker/config.json).
func WithDockerConfig(path string) Option {
	return func(o *options) { o.dockerCfg = path }
}

// WithRegistryAuthFiles reads registry credentials (and credential helper
// settings) from these Docker-style auth files, highest priority first,
// instead of the default locations; --docker-config (WithDockerConfig)
// still wins. The CLI finds them where OpenTofu and Podman look.
func WithRegistryAuthFiles(paths ...string) Option {
	return func(o *options) { o.authFiles = paths }
}

// WithRequestConcurrency lets n requests be in flight to the registry at
// once (regclient's own per-registry limit, 3 unless set), so n uploads
// can run side by side. n below 1 keeps regclient's default.
func WithRequestConcurrency(n int) Option {
	return func(o *options) { o.requests = n }
}

// WithRegClientOptions passes extra options to regclient (retry tuning in tests).
func WithRegClientOptions(opts ...regclient.Opt) Option {
	return func(o *options) { o.regClientOpts = append(o.regClientOpts, opts...) }
}

// Open connects to the plan's target. Credentials come from the Docker
// and Podman configs and credential helpers, as regclient reads them.
func Open(t config.Target, opts ...Option) (*Target, error) {
	o := options{logger: slog.New(slog.DiscardHandler), userAgent: "tofu-oci-mirror"}
	for _, opt := range opts {
		opt(&o)
	}
	// Go keeps 2 idle connections per host unless told: with more
	// requests than that in flight, every burst reconnected (361 TCP
	// connections to the registry for a 300-package sync, issue 15).
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = max(o.requests, 4)
	transport.MaxIdleConns = max(transport.MaxIdleConns, transport.MaxIdleConnsPerHost)
	rcOpts := []regclient.Opt{
		regclient.WithRegOpts(reg.WithTransport(transport)),
		regclient.WithSlog(o.logger),
		regclient.WithUserAgent(o.userAgent),
		// A layout is written artifact by artifact; regclient's GC on Close
		// would delete blobs of an artifact whose tag is not written yet.
		regclient.WithOCIDirOpts(ocidir.WithGC(false)),
	}
	if o.dockerCfg != "" {
		rcOpts = append(rcOpts, regclient.WithDockerCredsFile(o.dockerCfg))
	} else if len(o.authFiles) > 0 {
		// regclient lets a later file override an earlier one: load the
		// lowest priority first.
		for i := len(o.authFiles) - 1; i >= 0; i-- {
			rcOpts = append(rcOpts, regclient.WithDockerCredsFile(o.authFiles[i]))
		}
	} else {
		rcOpts = append(rcOpts, regclient.WithDockerCreds())
	}
	tg := &Target{prov: NewProvenanceStore(t.Provenance), logger: o.logger}
	if dir, ok := t.LayoutDir(); ok {
		tg.layout = dir
	} else {
		tg.host = t.Registry
		host := rcconfig.Host{Name: t.Registry, Hostname: t.Registry}
		if o.requests > 0 {
			host.ReqConcurrent = int64(o.requests)
		}
		if t.Insecure {
			host.TLS = rcconfig.TLSDisabled
		}
		if t.CAFile != "" {
			pem, err := os.ReadFile(t.CAFile)
			if err != nil {
				return nil, fmt.Errorf("target.ca_file: %w", err)
			}
			host.RegCert = string(pem)
		}
		rcOpts = append(rcOpts, regclient.WithConfigHost(host))
	}
	rcOpts = append(rcOpts, o.regClientOpts...)
	tg.rc = regclient.New(rcOpts...)
	tg.uploads.rcOpts = rcOpts
	return tg, nil
}

// String names the target as people configured it.
func (t *Target) String() string {
	if t.layout != "" {
		return "oci-layout:" + t.layout
	}
	return t.host
}

// Ref returns the reference of a tag (or, with tag "", the bare repository).
func (t *Target) Ref(repo, tag string) (ref.Ref, error) {
	var s string
	if t.layout != "" {
		s = "ocidir://" + filepath.ToSlash(filepath.Join(t.layout, filepath.FromSlash(repo)))
	} else {
		s = t.host + "/" + repo
	}
	if tag != "" {
		s += ":" + tag
	}
	r, err := ref.New(s)
	if err != nil {
		return ref.Ref{}, fmt.Errorf("%w: repository %q: %w", ErrTarget, repo, err)
	}
	if tag == "" {
		// ref.New defaults to "latest", which then shows up in regclient's
		// error messages about a repository where no tag was involved.
		r.Tag = ""
	}
	return r, nil
}

func (t *Target) digestRef(repo string, d digest.Digest) (ref.Ref, error) {
	r, err := t.Ref(repo, "")
	if err != nil {
		return r, err
	}
	return r.SetDigest(d.String()), nil
}

// IsNotFound reports whether err means the thing is absent; a layout reports
// a missing file as the wrapped os error rather than errs.ErrNotFound.
func IsNotFound(err error) bool {
	return errors.Is(err, errs.ErrNotFound) || errors.Is(err, fs.ErrNotExist)
}

// Tags lists a repository's tags, following pagination. A repository that
// does not exist yet has no tags.
func (t *Target) Tags(ctx context.Context, repo string) ([]string, error) {
	if t.layout != "" {
		if _, err := os.Stat(filepath.Join(t.layout, filepath.FromSlash(repo), "index.json")); errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
	}
	r, err := t.Ref(repo, "")
	if err != nil {
		return nil, err
	}
	tl, err := t.rc.TagList(ctx, r)
	if err != nil {
		if IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: listing tags of %s: %w", ErrTarget, repo, err)
	}
	tags, err := tl.GetTags()
	if err != nil {
		return nil, fmt.Errorf("%w: listing tags of %s: %w", ErrTarget, repo, err)
	}
	return tags, nil
}

// Manifest reads the manifest a tag points at, in one request. It returns
// the raw bytes and their descriptor; a missing tag wraps errs.ErrNotFound.
func (t *Target) Manifest(ctx context.Context, repo, tag string) ([]byte, descriptor.Descriptor, error) {
	r, err := t.Ref(repo, tag)
	if err != nil {
		return nil, descriptor.Descriptor{}, err
	}
	return t.manifestAt(ctx, r)
}

// ManifestByDigest reads a manifest by digest.
func (t *Target) ManifestByDigest(ctx context.Context, repo string, d digest.Digest) ([]byte, descriptor.Descriptor, error) {
	r, err := t.digestRef(repo, d)
	if err != nil {
		return nil, descriptor.Descriptor{}, err
	}
	return t.manifestAt(ctx, r)
}

func (t *Target) manifestAt(ctx context.Context, r ref.Ref) ([]byte, descriptor.Descriptor, error) {
	m, err := t.rc.ManifestGet(ctx, r)
	if err != nil {
		if IsNotFound(err) {
			return nil, descriptor.Descriptor{}, fmt.Errorf("%s: %w", r.CommonName(), errs.ErrNotFound)
		}
		return nil, descriptor.Descriptor{}, fmt.Errorf("%w: reading %s: %w", ErrTarget, r.CommonName(), err)
	}
	raw, err := m.RawBody()
	if err != nil {
		return nil, descriptor.Descriptor{}, fmt.Errorf("%w: reading %s: %w", ErrTarget, r.CommonName(), err)
	}
	return raw, m.GetDescriptor(), nil
}

// BlobExists reports whether the repository holds a blob, and returns its
// descriptor with the size the registry reports.
func (t *Target) BlobExists(ctx context.Context, repo string, d descriptor.Descriptor) (descriptor.Descriptor, bool, error) {
	r, err := t.Ref(repo, "")
	if err != nil {
		return d, false, err
	}
	rdr, err := t.rc.BlobHead(ctx, r, d)
	if err != nil {
		if IsNotFound(err) {
			return d, false, nil
		}
		return d, false, fmt.Errorf("%w: checking blob %s in %s: %w", ErrTarget, d.Digest, repo, err)
	}
	defer rdr.Close()
	got := rdr.GetDescriptor()
	if got.Size > 0 {
		d.Size = got.Size
	}
	return d, true, nil
}

// PutBlob uploads a blob whose digest and size are known. Pass an
// io.ReaderAt (an *io.SectionReader, a *bytes.Reader) so a failed upload
// can be retried from the start with a fresh reader: a 413 (a body size
// limit) is answered by uploading again in chunks below the limit, which
// the rest of the run then uses for blobs as large.
func (t *Target) PutBlob(ctx context.Context, repo string, d descriptor.Descriptor, rdr io.Reader) error {
	if err := t.putBlob(ctx, repo, d, rdr); err != nil {
		return fmt.Errorf("%w: uploading blob %s to %s: %w", ErrTarget, d.Digest, repo, explain(repo, nil, err))
	}
	return nil
}

// PutManifest pushes the exact bytes of an artifact. With tag "" it is
// pushed by digest only, invisible to anyone listing tags; with a tag, the
// tag is written by the same request, after which OpenTofu can see it.
func (t *Target) PutManifest(ctx context.Context, repo string, a manifest.Artifact, tag string) error {
	var r ref.Ref
	var err error
	var opts []regclient.ManifestOpts
	if tag == "" {
		r, err = t.digestRef(repo, a.Descriptor.Digest)
		opts = append(opts, regclient.WithManifestChild())
	} else {
		r, err = t.Ref(repo, tag)
	}
	if err != nil {
		return err
	}
	m, err := rcmanifest.New(rcmanifest.WithRaw(a.Raw), rcmanifest.WithDesc(descriptor.Descriptor{
		MediaType: a.Descriptor.MediaType, Digest: a.Descriptor.Digest, Size: a.Descriptor.Size,
	}))
	if err != nil {
		return fmt.Errorf("%w: manifest %s: %w", ErrTarget, a.Descriptor.Digest, err)
	}
	if err := t.putManifestRetrying503(ctx, r, m, opts); err != nil {
		what := a.Descriptor.Digest.String()
		if tag != "" {
			what = "tag " + tag
		}
		return fmt.Errorf("%w: pushing %s to %s: %w", ErrTarget, what, repo, explain(repo, a.Raw, err))
	}
	return nil
}

// Close releases connections; for a layout it flushes index.json files.
func (t *Target) Close(ctx context.Context, repos ...string) {
	for _, repo := range repos {
		if r, err := t.Ref(repo, ""); err == nil {
			_ = t.rc.Close(ctx, r)
		}
	}
}

// ManifestExists reports whether the repository holds a manifest by digest.
func (t *Target) ManifestExists(ctx context.Context, repo string, d digest.Digest) (bool, error) {
	r, err := t.digestRef(repo, d)
	if err != nil {
		return false, err
	}
	if _, err := t.rc.ManifestHead(ctx, r); err != nil {
		if IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("%w: checking manifest %s in %s: %w", ErrTarget, d, repo, err)
	}
	return true, nil
}

// Blob streams a blob's content; the caller closes the reader. Only d's
// media type, digest and size are used, so content embedded in a
// descriptor is never taken for the registry's. A missing blob wraps
// errs.ErrNotFound; content whose digest or size differs from d makes a
// Read fail at the end with errs.ErrDigestMismatch, errs.ErrShortRead or
// errs.ErrSizeLimitExceeded.
func (t *Target) Blob(ctx context.Context, repo string, d descriptor.Descriptor) (io.ReadCloser, error) {
	r, err := t.Ref(repo, "")
	if err != nil {
		return nil, err
	}
	rdr, err := t.rc.BlobGet(ctx, r, descriptor.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size})
	if err != nil {
		if IsNotFound(err) {
			return nil, fmt.Errorf("blob %s in %s: %w", d.Digest, repo, errs.ErrNotFound)
		}
		return nil, fmt.Errorf("%w: reading blob %s in %s: %w", ErrTarget, d.Digest, repo, err)
	}
	return rdr, nil
}

// Referrers lists the manifests in repo whose subject is the manifest
// with digest subject, only those of artifactType unless it is "". It
// asks the registry's referrers API, or reads the sha256-<hex> fallback
// tag of registries and layouts without one. None is an empty list.
func (t *Target) Referrers(ctx context.Context, repo string, subject digest.Digest, artifactType string) ([]descriptor.Descriptor, error) {
	r, err := t.digestRef(repo, subject)
	if err != nil {
		return nil, err
	}
	var opts []scheme.ReferrerOpts
	if artifactType != "" {
		opts = append(opts, scheme.WithReferrerMatchOpt(descriptor.MatchOpt{ArtifactType: artifactType}))
	}
	rl, err := t.rc.ReferrerList(ctx, r, opts...)
	if err != nil {
		if IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: listing referrers of %s in %s: %w", ErrTarget, subject, repo, err)
	}
	return rl.Descriptors, nil
}

// putManifestRetrying503 retries a manifest PUT answered 503 Service
// Unavailable, a busy registry's answer: regclient retries 429, 500, 502
// and 504 itself but gives up on the first 503 for manifests.
func (t *Target) putManifestRetrying503(ctx context.Context, r ref.Ref, m rcmanifest.Manifest, opts []regclient.ManifestOpts) error {
	wait := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := t.rc.ManifestPut(ctx, r, m, opts...)
		if err == nil || attempt == 4 || !errors.Is(err, errs.ErrHTTPStatus) || !strings.Contains(err.Error(), "[http 503]") {
			return err
		}
		select {
		case <-time.After(wait):
			wait *= 2
		case <-ctx.Done():
			return err
		}
	}
}

// RegClient returns the registry client the target uses (its credentials,
// TLS settings and retries), for probes such as doctor that need requests
// the Target methods do not make. nil never; for a layout it reaches the
// layout directories.
func (t *Target) RegClient() *regclient.RegClient { return t.rc }

// Provenance is where this target keeps provider provenance, following
// target.provenance and what the registry refused in this run.
func (t *Target) Provenance() *ProvenanceStore { return t.prov }

// Host returns the "host:port" of the registry; "" for an OCI layout.
func (t *Target) Host() string { return t.host }
