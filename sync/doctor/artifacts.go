package doctor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/regclient/regclient"
	"github.com/regclient/regclient/scheme"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/errs"
	rcmanifest "github.com/regclient/regclient/types/manifest"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
)

// putArtifact pushes a's exact bytes, by digest when tag is "", and reads
// them back: a registry that rewrites a manifest (drops artifactType,
// reorders fields) changes its digest and breaks OpenTofu's lookups.
func (p *prober) putArtifact(ctx context.Context, a manifest.Artifact, tag string) error {
	m, err := rcmanifest.New(rcmanifest.WithRaw(a.Raw), rcmanifest.WithDesc(descriptor.Descriptor{
		MediaType: a.Descriptor.MediaType, Digest: a.Descriptor.Digest, Size: a.Descriptor.Size,
	}))
	if err != nil {
		return err
	}
	r := p.repo.SetDigest(a.Descriptor.Digest.String())
	var opts []regclient.ManifestOpts
	if tag != "" {
		r = p.repo.SetTag(tag)
	} else {
		opts = append(opts, regclient.WithManifestChild())
	}
	if err := p.rc.ManifestPut(ctx, r, m, opts...); err != nil {
		return err
	}
	if tag != "" {
		p.tags = append(p.tags, tag)
	}
	if !slices.Contains(p.manifests, a.Descriptor.Digest) {
		p.manifests = append(p.manifests, a.Descriptor.Digest)
	}
	back, err := p.rc.ManifestGet(ctx, r)
	if err != nil {
		return fmt.Errorf("reading back %s: %w", r.CommonName(), err)
	}
	raw, _ := back.RawBody()
	if !bytes.Equal(raw, a.Raw) {
		return fmt.Errorf("%w: the registry serves other bytes than were pushed (digest %s)", errChanged, back.GetDescriptor().Digest)
	}
	return nil
}

var errChanged = errors.New("manifest changed by the registry")

func (p *prober) artifactRow(name string, err error, ok, what string) bool {
	if err == nil {
		p.add(name, OK, ok, "")
		return true
	}
	r := refusalOf(err)
	hint := hintMediaType(what)
	if r.Unauthorized() {
		hint = hintDenied("push to", p.target.Registry, p.repo.Repository)
	}
	p.add(name, Fail, "refused: "+r.String(), hint)
	return false
}

// artifacts pushes a provider platform manifest, its index under a tag and
// a module manifest, exactly as sync builds them. It reports whether the
// index is there for the checks that need a subject.
func (p *prober) artifacts(ctx context.Context) bool {
	platform, err := manifest.ProviderTarget(p.layer, "terraform-provider-doctor_0.0.0_linux_amd64.zip")
	if err == nil {
		err = p.pushEmptyConfig(ctx)
	}
	if err == nil {
		err = p.putArtifact(ctx, platform, "")
	}
	platformOK := p.artifactRow(CheckProvider, err, "artifactType "+manifest.ProviderTargetArtifactType+" with one "+manifest.ZipLayerMediaType+" layer stored as pushed",
		"artifactType "+manifest.ProviderTargetArtifactType+" or the "+manifest.ZipLayerMediaType+" layer")
	indexOK := false
	if platformOK {
		p.index, err = manifest.ProviderIndex([]manifest.PlatformManifest{{OS: "linux", Arch: "amd64", Manifest: platform.Descriptor}})
		if err == nil {
			err = p.putArtifact(ctx, p.index, "doctor-"+p.nonce)
		}
		indexOK = p.artifactRow(CheckIndex, err, "image index with artifactType "+manifest.ProviderIndexArtifactType+" and a linux/amd64 entry, tagged doctor-"+p.nonce,
			"the index artifactType "+manifest.ProviderIndexArtifactType)
	} else {
		p.skip("the platform manifest was refused", CheckIndex)
	}
	module, err := manifest.ModulePackage(p.layer)
	if err == nil {
		err = p.putArtifact(ctx, module, "")
	}
	p.artifactRow(CheckModule, err, "artifactType "+manifest.ModulePackageArtifactType+" with one "+manifest.ZipLayerMediaType+" layer stored as pushed",
		"artifactType "+manifest.ModulePackageArtifactType)
	return indexOK
}

func (p *prober) pushEmptyConfig(ctx context.Context) error {
	_, err := p.rc.BlobPut(ctx, p.repo, manifest.EmptyConfig(), bytes.NewReader(descriptor.EmptyData))
	return err
}

// provenance checks our provenance media types without subject first, so
// a registry refusing subject is told apart from one refusing the types.
func (p *prober) provenance(ctx context.Context) {
	var layers []descriptor.Descriptor
	var err error
	for _, mt := range []string{manifest.SHA256SUMSMediaType, manifest.SignatureMediaType, manifest.PublicKeyMediaType} {
		var d descriptor.Descriptor
		if d, err = p.putBlob(ctx, 256, mt, false); err != nil {
			break
		}
		layers = append(layers, d)
	}
	if err == nil {
		var plain manifest.Artifact
		if plain, err = manifest.DetachedProvenance(p.index.Descriptor.Digest, layers[0], layers[1], layers[2]); err == nil {
			err = p.putArtifact(ctx, plain, "")
		}
	}
	if err != nil {
		r := refusalOf(err)
		p.add(CheckProvenance, Warn, "refused: "+r.String(), hintMediaType("our provenance media types ("+manifest.ProvenanceArtifactType+", "+manifest.SignatureMediaType+", "+manifest.PublicKeyMediaType+")"))
		p.skip("provenance media types refused", CheckSubject, CheckReferrers)
		p.rep.Provenance = ProvenanceRefused
		return
	}
	p.add(CheckProvenance, OK, "artifactType "+manifest.ProvenanceArtifactType+" with SHA256SUMS, signature and key layers", "")

	prov, err := manifest.Provenance(p.index.Descriptor, layers[0], layers[1], layers[2])
	if err == nil {
		err = p.putArtifact(ctx, prov, "")
	}
	if err != nil {
		r := refusalOf(err)
		status := Warn
		if p.target.Provenance == config.ProvenanceReferrers {
			status = Fail // every version would fail at its provenance push
		}
		p.add(CheckSubject, status, "a manifest with subject was refused: "+r.String(), hintSubject(p.target.Provenance))
		p.skip("subject refused", CheckReferrers)
		p.rep.Provenance = ProvenanceSubjectRefused
		return
	}
	p.add(CheckSubject, OK, "provenance manifest with subject = the provider index accepted", "")
	p.referrers(ctx, prov.Descriptor)
}

func (p *prober) referrers(ctx context.Context, prov descriptor.Descriptor) {
	subj := p.repo.SetDigest(p.index.Descriptor.Digest.String())
	rl, err := p.rc.ReferrerList(ctx, subj, scheme.WithReferrerMatchOpt(descriptor.MatchOpt{ArtifactType: manifest.ProvenanceArtifactType}))
	if err != nil {
		p.add(CheckReferrers, Warn, "listing referrers: "+refusalOf(err).String(), hintReferrersMissing())
		return
	}
	found := slices.ContainsFunc(rl.Descriptors, func(d descriptor.Descriptor) bool { return d.Digest == prov.Digest })
	switch {
	case !found:
		p.add(CheckReferrers, Warn, fmt.Sprintf("%d referrers listed, not the provenance artifact just pushed", len(rl.Descriptors)), hintReferrersMissing())
	case len(rl.Tags) > 0:
		p.rep.Provenance = ProvenanceReferrersTag
		p.tags = append(p.tags, rl.Tags...)
		p.add(CheckReferrers, Warn, "no referrers API; provenance found through the fallback tag "+rl.Tags[0], hintNoReferrers())
	default:
		p.rep.Provenance = ProvenanceReferrersAPI
		p.add(CheckReferrers, OK, "the referrers API lists the provenance artifact with its artifactType", "")
	}
}

// pagination adds a second tag, then lists all tags and one page of one.
func (p *prober) pagination(ctx context.Context) {
	second := "doctor-" + p.nonce + "-b"
	if err := p.putArtifact(ctx, p.index, second); err != nil {
		p.add(CheckPagination, Warn, "second tag refused: "+refusalOf(err).String(), "")
		return
	}
	tl, err := p.rc.TagList(ctx, p.repo)
	var all []string
	if err == nil {
		all, err = tl.GetTags()
	}
	if err != nil {
		p.add(CheckPagination, Fail, "listing tags: "+refusalOf(err).String(), hintTagsIncomplete())
		return
	}
	if !slices.Contains(all, "doctor-"+p.nonce) || !slices.Contains(all, second) {
		p.add(CheckPagination, Fail, fmt.Sprintf("the tag list (%d tags) misses doctor-%s or %s", len(all), p.nonce, second), hintTagsIncomplete())
		return
	}
	page, err := p.rc.TagList(ctx, p.repo, scheme.WithTagLimit(1))
	if err != nil {
		p.add(CheckPagination, Warn, "listing with n=1: "+refusalOf(err).String(), hintPagination())
		return
	}
	tags, _ := page.GetTags()
	h, _ := page.RawHeaders()
	switch {
	case len(tags) > 1:
		p.add(CheckPagination, OK, fmt.Sprintf("n is ignored: every tag (%d) in one answer", len(tags)), "")
	case h.Get("Link") != "":
		p.add(CheckPagination, OK, fmt.Sprintf("n=1 gives one tag and a Link to the next page; the full list (%d tags) follows Link", len(all)), "")
	default:
		p.add(CheckPagination, Warn, "n=1 gives one tag and no Link header", hintPagination())
	}
}

// cleanup deletes tags, then manifests (referrers first).
func (p *prober) cleanup(ctx context.Context) {
	var refused error
	var left []string
	// Once the registry says deletes are unsupported or not allowed, the
	// rest would be refused too; each refusal costs a backoff.
	stop := false
	note := func(what string, del func() error) {
		if stop {
			left = append(left, what)
			return
		}
		err := del()
		if err == nil || errors.Is(err, errs.ErrNotFound) {
			return
		}
		if refused == nil {
			refused = err
		}
		r := refusalOf(err)
		stop = r.Status == 405 || r.Code == "UNSUPPORTED" || r.Unauthorized()
		left = append(left, what)
	}
	for _, t := range p.tags {
		note("tag "+t, func() error { return p.rc.TagDelete(ctx, p.repo.SetTag(t)) })
	}
	for _, d := range slices.Backward(p.manifests) {
		note("manifest "+d.String(), func() error { return p.rc.ManifestDelete(ctx, p.repo.SetDigest(d.String())) })
	}
	// Blobs are left to the registry's garbage collection, which removes
	// them once no manifest refers to them: regclient v0.11.7's BlobDelete
	// never closes its response, and after three calls every request of
	// the client waits forever for a free connection slot.
	n := len(p.tags) + len(p.manifests)
	if refused == nil {
		p.add(CheckDelete, OK, fmt.Sprintf("deleted the %d tags and %d manifests doctor wrote; its %d blobs are left to the registry's garbage collection", len(p.tags), len(p.manifests), len(p.blobs)), "")
		return
	}
	p.rep.Leftovers = left
	r := refusalOf(refused)
	hint := hintDelete(p.repo.Repository)
	if r.Unauthorized() {
		hint = hintDenied("delete in", p.target.Registry, p.repo.Repository) + "; " + hint
	}
	p.add(CheckDelete, Warn, fmt.Sprintf("%d of %d deletes refused: %s", len(left), n, r), hint)
}
