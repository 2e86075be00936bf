package target

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/errs"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
)

// ProvenanceForm is how one provider version's provenance is written.
type ProvenanceForm string

// The forms of [ProvenanceStore.Form].
const (
	// FormReferrer: a manifest whose subject is the index, found through
	// the referrers API or the sha256-<hex> fallback tag.
	FormReferrer ProvenanceForm = "referrer"
	// FormTag: a detached manifest ([manifest.DetachedProvenance]) under
	// [manifest.ProvenanceTag], for registries that refuse subject.
	FormTag ProvenanceForm = "tag"
	// FormNone: nothing is written (target.provenance: off, or the
	// registry refused both forms in this run).
	FormNone ProvenanceForm = "none"
)

// ProvenanceStore decides, for one target, where provider provenance is
// written, following target.provenance, and learns from the registry's
// refusals: the one place that knows whether this registry takes
// manifests with subject. Sync and import ask it before each write and
// report to it what the registry answered. It is safe for concurrent use.
type ProvenanceStore struct {
	mode config.ProvenanceMode

	mu sync.Mutex
	// subjectRefused is the registry's answer to a referrer, once refused (auto).
	subjectRefused string
	// tagRefused is its answer to the detached form, once refused too.
	tagRefused string
}

// NewProvenanceStore follows mode ("" is auto).
func NewProvenanceStore(mode config.ProvenanceMode) *ProvenanceStore {
	if mode == "" {
		mode = config.ProvenanceAuto
	}
	return &ProvenanceStore{mode: mode}
}

// ProvenanceKeeper is a publisher that keeps its own [ProvenanceStore];
// [Target] is one. Publishers that are not (a bundle's staging
// directory) take referrers.
type ProvenanceKeeper interface {
	Provenance() *ProvenanceStore
}

// ProvenanceOf returns p's store, or a store taking referrers (strict) for
// a publisher that keeps none.
func ProvenanceOf(p any) *ProvenanceStore {
	if k, ok := p.(ProvenanceKeeper); ok && k.Provenance() != nil {
		return k.Provenance()
	}
	return NewProvenanceStore(config.ProvenanceReferrers)
}

// Mode is the configured target.provenance.
func (s *ProvenanceStore) Mode() config.ProvenanceMode { return s.mode }

// Form is the form to write next.
func (s *ProvenanceStore) Form() ProvenanceForm {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.mode == config.ProvenanceOff || s.tagRefused != "":
		return FormNone
	case s.mode == config.ProvenanceTag || s.subjectRefused != "":
		return FormTag
	}
	return FormReferrer
}

// ErrSubjectRefused wraps the error of a referrer push the registry
// refused, with what to configure.
var ErrSubjectRefused = errors.New("the registry refuses manifests with subject (Amazon ECR: aws/containers-roadmap#2783)")

// ReferrerFailed takes the error of pushing a referrer and says whether
// to write the detached form instead: in auto mode when the registry
// refused the content (405, 415, 400 MANIFEST_INVALID/UNSUPPORTED), which
// it then remembers for the rest of the run. Otherwise it returns the
// error to fail the version with, naming the refusal and the setting that
// avoids it.
func (s *ProvenanceStore) ReferrerFailed(err error) (fallBack bool, _ error) {
	r := RefusalOf(err)
	if !r.ContentRefused() {
		return false, err
	}
	if s.mode != config.ProvenanceAuto {
		return false, fmt.Errorf("%w: %s; target.provenance: auto (or tag) keeps provenance under a tag instead (tofu-oci-mirror doctor tells what the registry accepts): %w", ErrSubjectRefused, r, err)
	}
	s.mu.Lock()
	if s.subjectRefused == "" {
		s.subjectRefused = r.String()
	}
	s.mu.Unlock()
	return true, nil
}

// TagFailed takes the error of pushing the detached form and says
// whether the version may be published without provenance: when the
// registry refused the content (auto and tag never block a version), which
// it then remembers so later versions do not try again; warning says so.
// A failure that is not a refusal (an outage) is returned to fail the
// version, which the next run retries.
func (s *ProvenanceStore) TagFailed(err error) (warning string, _ error) {
	r := RefusalOf(err)
	if !r.ContentRefused() {
		return "", err
	}
	s.mu.Lock()
	if s.tagRefused == "" {
		s.tagRefused = r.String()
	}
	s.mu.Unlock()
	return fmt.Sprintf("provenance not stored: the registry refused it (%s); the version is published without its signed SHA256SUMS, so verify and import cannot check it again. The registry's media type allowlist must accept %s with layers %s, %s, %s (tofu-oci-mirror doctor)",
		r, manifest.ProvenanceArtifactType, manifest.SHA256SUMSMediaType, manifest.SignatureMediaType, manifest.PublicKeyMediaType), nil
}

// String says which mode is in use and why, for run summaries and doctor.
func (s *ProvenanceStore) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.mode == config.ProvenanceOff:
		return "off (target.provenance: off): no provenance is written"
	case s.tagRefused != "":
		return fmt.Sprintf("none stored (%s): the registry refused the provenance manifest (%s)", s.mode, s.tagRefused)
	case s.subjectRefused != "":
		return fmt.Sprintf("tag %s<index hex> (auto: the registry refused a manifest with subject: %s)", manifest.ProvenanceTagPrefix, s.subjectRefused)
	case s.mode == config.ProvenanceTag:
		return fmt.Sprintf("tag %s<index hex> (target.provenance: tag)", manifest.ProvenanceTagPrefix)
	case s.mode == config.ProvenanceReferrers:
		return "referrers (target.provenance: referrers)"
	}
	return "referrers (auto)"
}

// ProvenanceFinder is what [FindProvenance] reads.
type ProvenanceFinder interface {
	ReferrerLister
	TagResolver
}

// FindProvenance lists the provenance manifests kept for the provider
// index with digest index in repo, in either form: the referrers (API or
// fallback tag) and, when there is none, the detached manifest at
// [manifest.ProvenanceTag] (one more GET, answered 404 on registries that
// take referrers). Verify and the inventory find provenance only through
// it. None is an empty list.
func FindProvenance(ctx context.Context, t ProvenanceFinder, repo string, index digest.Digest) ([]descriptor.Descriptor, error) {
	refs, err := t.Referrers(ctx, repo, index, manifest.ProvenanceArtifactType)
	if err != nil || len(refs) > 0 {
		return refs, err
	}
	_, desc, err := t.Manifest(ctx, repo, manifest.ProvenanceTag(index))
	if errors.Is(err, errs.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	desc.ArtifactType = manifest.ProvenanceArtifactType
	return []descriptor.Descriptor{desc}, nil
}
