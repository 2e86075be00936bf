package bundle

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/opencontainers/go-digest"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/copygraph"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/modsource"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/provenance"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/sched"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/spool"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/target"
)

// ImportTarget is what Import needs of the registry.
type ImportTarget interface {
	target.Publisher
	target.TagResolver
	target.ManifestFetcher
	target.ManifestChecker
}

// ImportOptions configure [Import]. The zero value imports nothing that
// is not signed: set Signature and BundleKeys, or AllowUnsignedBundle.
type ImportOptions struct {
	Logger      *slog.Logger
	SpoolDir    string // where blobs wait between the tar and the registry (default: temp dir)
	Concurrency int    // blob uploads in flight (default 4)
	// Policy is what vouches for the carried providers: pinned keys and
	// the providers allowed unsigned (trust.provider_keys,
	// trust.allow_unsigned_providers). Import decides itself whether the
	// keys carried in the bundle count (only when the bundle's signature
	// verified and nothing is pinned) and never applies OpenTofu's
	// registry.opentofu.org exception.
	Policy provenance.Policy
	// Signature is the bundle's detached ASCII-armored signature
	// (BUNDLE.sig); nil when there is none.
	Signature []byte
	// BundleKeys are the keys a bundle signature may be made by
	// (trust.bundle_keys).
	BundleKeys openpgp.EntityList
	// AllowUnsignedBundle imports a bundle whose signature is missing or
	// does not verify. Its carried keys are then not trusted, so each
	// provider must verify with a pinned key or be allowed unsigned; the
	// per-artifact checks are never weakened.
	AllowUnsignedBundle bool
	// ModuleLimits bound module packages (zero fields: sync's defaults).
	ModuleLimits modsource.Limits
	// Progress receives a Total once the bundle is checked against the
	// target, then the Package events of each package (zip layer) it
	// streams (nil: none). Uploads report their bytes as they send them,
	// so it is called from several goroutines at once.
	Progress func(item.Event)
}

// importArtifact is one artifact of the bundle and what becomes of it here.
type importArtifact struct {
	Artifact
	repo    string
	item    item.Result
	pending bool
	entry   any // the plan's *config.Provider or *config.Module selecting it
}

// Import verifies a bundle streamed from r and publishes it into tg,
// mapping identities to repositories with cfg's target.
//
// Before anything is uploaded: the bundle's signature must verify against
// opts.BundleKeys (unless AllowUnsignedBundle), and every artifact must be
// one cfg selects. While streaming, every entry must be a plain file whose
// digest and size are what the signed metadata says, module packages must
// pass sync's archive safety, and blobs and manifests are pushed by digest
// only (invisible to OpenTofu). When r is a plain file (an *os.File), a
// blob is not read ahead of its upload: the upload reads it from the file
// through the hash and is refused its last bytes unless the digest
// matched, so no blob completes from bytes that did not verify. A
// provider's provenance and every tag are written only after the whole
// bundle verified and that provider's signed SHA256SUMS covers every
// platform of the index being tagged. A damaged or untrusted bundle
// returns an error and tags nothing;
// per-artifact failures (a provenance that does not verify, a conflicting
// tag) are in the result.
func Import(ctx context.Context, cfg *config.Config, tg ImportTarget, r io.Reader, opts ImportOptions) (*item.Run, error) {
	res, err := importStream(ctx, cfg, tg, r, opts)
	if d, ok := r.(interface{ Diagnose() error }); ok && err != nil {
		if cause := d.Diagnose(); cause != nil {
			err = fmt.Errorf("%w (which broke the import: %v)", cause, err)
		}
	}
	return res, err
}

func importStream(ctx context.Context, cfg *config.Config, tg ImportTarget, r io.Reader, opts ImportOptions) (*item.Run, error) {
	res := &item.Run{Start: time.Now()}
	defer func() { res.End = time.Now() }()
	opts, err := opts.withDefaults()
	if err != nil {
		return res, err
	}
	var file *offsetReader
	if f, ok := r.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			file = &offsetReader{f: f}
			r = file
		}
	}
	// Before anything is pushed: the signature, the plan's say on every
	// artifact, what the target holds.
	tr := tar.NewReader(r)
	meta, raw, err := readMetadata(tr)
	if err != nil {
		return res, err
	}
	policy, err := bundlePolicy(raw, opts)
	if err != nil {
		return res, err
	}
	arts, err := mapArtifacts(cfg, meta)
	if err != nil {
		return res, err
	}
	if err := classify(ctx, tg, arts); err != nil {
		return res, err
	}
	if err := checkBase(ctx, tg, arts); err != nil {
		return res, err
	}
	work, err := spool.WorkDir(opts.SpoolDir, "import")
	if err != nil {
		return res, fmt.Errorf("spool: %w", err)
	}
	defer func() { _ = os.RemoveAll(work) }()
	im := newImporter(tg, opts, policy, arts, file, work)
	opts.Progress(item.Event{Total: im.total()})
	if err := im.streamAll(ctx, tr, r); err != nil {
		// Nothing was tagged: the next import of a good bundle resumes
		// without uploading again what got in.
		for _, a := range arts {
			if a.pending {
				a.item.Fail(err)
			}
		}
		res.Items = items(arts)
		return res, err
	}
	// Everything verified: the versions are published side by side (each
	// a few small requests and a signature check), not one after the
	// other at the end of the import.
	var publish []*importArtifact
	for _, a := range arts {
		if a.pending {
			publish = append(publish, a)
		}
	}
	sched.Each(len(publish), opts.Concurrency, func(i int) { im.publish(ctx, publish[i]) })
	res.Items = items(arts)
	res.Provenance = im.prov.String()
	return res, nil
}

// withDefaults fills the zero fields of o and checks the spool directory.
func (o ImportOptions) withDefaults() (ImportOptions, error) {
	if o.SpoolDir != "" {
		if fi, err := os.Stat(o.SpoolDir); err != nil || !fi.IsDir() {
			return o, fmt.Errorf("spool directory %s: not a directory (%v)", o.SpoolDir, err)
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Progress == nil {
		o.Progress = func(item.Event) {}
	}
	return o, nil
}

func newImporter(tg ImportTarget, opts ImportOptions, policy provenance.Policy, arts []*importArtifact, file *offsetReader, work string) *importer {
	im := &importer{tg: tg, opts: opts, policy: policy, arts: arts, file: file, work: work,
		needs: map[digest.Digest][]*importArtifact{}, refs: map[digest.Digest]BlobRef{},
		manifests: map[digest.Digest][]byte{}, layers: map[digest.Digest]string{}, seen: map[digest.Digest]bool{},
		deferred: map[digest.Digest]bool{}, copier: copygraph.New(tg, nil), prov: target.ProvenanceOf(tg), slots: sched.NewLimit(opts.Concurrency)}
	for _, a := range arts {
		for _, b := range a.Blobs {
			if b.Inside {
				im.needs[b.Digest] = append(im.needs[b.Digest], a)
				im.refs[b.Digest] = b
			}
		}
	}
	return im
}

// streamAll reads every entry and waits for every push, then checks the
// bundle was whole: every blob it promised arrived, and (for parts)
// nothing but padding follows the tar.
func (im *importer) streamAll(ctx context.Context, tr *tar.Reader, r io.Reader) error {
	err := im.stream(ctx, tr)
	im.copier.Wait()
	if err == nil {
		err = im.uploadErr()
	}
	if err == nil {
		err = im.verifyFileBlobs()
	}
	if err == nil {
		err = im.checkComplete()
	}
	if end, ok := r.(interface{ End() error }); ok && err == nil {
		err = end.End()
	}
	return err
}

// bundlePolicy decides what vouches for the bundle's providers: the keys
// it carries only when its own signature verified against a bundle key
// and no provider key is pinned.
func bundlePolicy(meta []byte, opts ImportOptions) (provenance.Policy, error) {
	p := opts.Policy
	p.OpenTofuException = false
	signer, err := checkSignature(meta, opts.Signature, opts.BundleKeys)
	if err != nil && !opts.AllowUnsignedBundle {
		return p, fmt.Errorf("%w; nothing was imported (--allow-unsigned-bundle imports it anyway, trusting only pinned keys)", err)
	}
	if err != nil {
		opts.Logger.Warn("importing a bundle whose signature was not verified: only pinned provider keys and trust.allow_unsigned_providers vouch for its providers", "reason", err.Error())
		p.CarriedKeysTrusted = false
		return p, nil
	}
	opts.Logger.Info("bundle signature verified", "key", signer)
	p.CarriedKeysTrusted = !p.Pinned()
	return p, nil
}

func items(arts []*importArtifact) []item.Result {
	out := make([]item.Result, len(arts))
	for i, a := range arts {
		out[i] = a.item
	}
	return out
}

// offsetReader reads a bundle file and knows where it stands, so a blob
// entry can be uploaded straight from the file. archive/tar reads no
// further than it must, so after Next the offset is the start of the
// entry's data; it seeks past the data of entries the import leaves to
// the uploads (see fileBlob).
type offsetReader struct {
	f      *os.File
	offset int64
}

func (o *offsetReader) Read(b []byte) (int, error) {
	n, err := o.f.Read(b)
	o.offset += int64(n)
	return n, err
}

func (o *offsetReader) Seek(offset int64, whence int) (int64, error) {
	n, err := o.f.Seek(offset, whence)
	if err == nil {
		o.offset = n
	}
	return n, err
}
