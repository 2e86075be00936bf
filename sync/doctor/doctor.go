// Package doctor probes a target registry before the first push and says,
// one check each, whether it does what OpenTofu and tofu-oci-mirror need:
// reachable over trusted TLS, credentials accepted for pull, push and
// delete, blob uploads (monolithic, chunked, the largest size accepted),
// our manifests with artifactType and archive/zip layers, our provenance
// media types, subject, the referrers API or its fallback tag, tag-list
// pagination and repository creation on push.
//
// It writes only under one scratch repository and deletes what it wrote
// when the registry lets it. Each failing or degraded check carries a hint
// naming what to configure on the registries we know. The package reads
// no environment: the caller passes the target, its registry client and
// what it found about credentials.
package doctor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"

	"github.com/regclient/regclient"
	"github.com/regclient/regclient/types/ref"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
)

// Status is the outcome of one check.
type Status string

const (
	// OK means the registry does what we need.
	OK Status = "ok"
	// Warn means it works in a degraded way (no referrers API, a body
	// limit chunked uploads get around, deletes refused); the exit code
	// stays 0.
	Warn Status = "warn"
	// Fail means OpenTofu or sync cannot work until it is fixed.
	Fail Status = "fail"
	// Skip means the check could not run because an earlier one failed.
	Skip Status = "skip"
)

// Names of the checks, in the order they run; stable for --output json.
const (
	CheckReachable   = "reachable"
	CheckCredentials = "credentials"
	CheckPull        = "pull"
	CheckCreate      = "repository creation on push"
	CheckPush        = "push"
	CheckMonolithic  = "blob upload: monolithic"
	CheckChunked     = "blob upload: chunked"
	CheckProvider    = "provider manifest: artifactType, archive/zip layer"
	CheckIndex       = "provider index: artifactType, platforms"
	CheckModule      = "module manifest: artifactType, archive/zip layer"
	CheckProvenance  = "provenance media types"
	CheckSubject     = "subject accepted"
	CheckReferrers   = "referrers API"
	CheckPagination  = "tag-list pagination"
	CheckDelete      = "delete"
)

// What Report.Provenance says about keeping provenance in this registry.
const (
	// ProvenanceReferrersAPI: subject accepted, the referrers API lists it.
	ProvenanceReferrersAPI = "referrers-api"
	// ProvenanceReferrersTag: subject accepted, no referrers API; clients
	// find it through the sha256-<hex> fallback tag.
	ProvenanceReferrersTag = "referrers-fallback-tag"
	// ProvenanceSubjectRefused: manifests with subject are refused;
	// provenance must be kept without subject (under a tag).
	ProvenanceSubjectRefused = "subject-refused"
	// ProvenanceRefused: our provenance media types are refused in either
	// form; no provenance can be kept until the allowlist takes them.
	ProvenanceRefused = "refused"
)

// ProvenanceInUse says what sync and import write in a registry probed
// as probed (a Provenance* constant) under target.provenance: mode.
func ProvenanceInUse(mode config.ProvenanceMode, probed string) string {
	if mode == "" {
		mode = config.ProvenanceAuto
	}
	switch {
	case mode == config.ProvenanceOff:
		return "off (target.provenance: off): no provenance is written"
	case probed == ProvenanceRefused:
		return fmt.Sprintf("none (target.provenance: %s): the registry refuses the provenance media types; versions are published without it, with a warning", mode)
	case mode == config.ProvenanceTag:
		return "tag " + manifest.ProvenanceTagPrefix + "<index hex> (target.provenance: tag)"
	case probed == ProvenanceSubjectRefused && mode == config.ProvenanceReferrers:
		return "referrers (target.provenance: referrers): refused here, every version would fail; use auto or tag"
	case probed == ProvenanceSubjectRefused:
		return "tag " + manifest.ProvenanceTagPrefix + "<index hex> (auto: the registry refuses manifests with subject)"
	case probed == ProvenanceReferrersTag:
		return fmt.Sprintf("referrers, through the sha256-<hex> fallback tag (target.provenance: %s)", mode)
	case probed == ProvenanceReferrersAPI:
		return fmt.Sprintf("referrers, through the referrers API (target.provenance: %s)", mode)
	}
	return fmt.Sprintf("not probed (target.provenance: %s)", mode)
}

// Check is one row of the report.
type Check struct {
	// Name is one of the Check* constants.
	Name string `json:"name"`
	// Status is the outcome.
	Status Status `json:"status"`
	// Detail says what the registry did, with its own error message when
	// it refused.
	Detail string `json:"detail"`
	// Hint says what to configure, for Warn and Fail; "" otherwise.
	Hint string `json:"hint,omitempty"`
}

// Report is the result of Run.
type Report struct {
	// Target is the registry host probed.
	Target string `json:"target"`
	// Repository is the scratch repository doctor wrote under.
	Repository string `json:"repository"`
	// Provenance is how this registry can keep provenance: one of the
	// Provenance* constants, or "" when not probed.
	Provenance string `json:"provenance"`
	// ProvenanceMode is what sync and import write here under the plan's
	// target.provenance (see [ProvenanceInUse]).
	ProvenanceMode string `json:"provenance_mode"`
	// Checks are the rows, in the order of the Check* constants.
	Checks []Check `json:"checks"`
	// Leftovers lists what doctor wrote and could not delete.
	Leftovers []string `json:"leftovers,omitempty"`
}

// OK reports whether no check failed: everything OpenTofu needs works.
func (r *Report) OK() bool {
	for _, c := range r.Checks {
		if c.Status == Fail {
			return false
		}
	}
	return true
}

// Count returns how many checks ended with s.
func (r *Report) Count(s Status) int {
	n := 0
	for _, c := range r.Checks {
		if c.Status == s {
			n++
		}
	}
	return n
}

// Get returns the check named name, or a zero Check.
func (r *Report) Get(name string) Check {
	for _, c := range r.Checks {
		if c.Name == name {
			return c
		}
	}
	return Check{}
}

// Credentials is what the caller found about credentials for the target
// host, before any request: doctor cannot see inside regclient's config.
type Credentials struct {
	// Found is true when a Docker/Podman config or credential helper has
	// an entry for the host.
	Found bool
	// Source names where ("~/.docker/config.json", "credential helper
	// ecr-login"); "" when not found.
	Source string
}

// Option changes how Run probes.
type Option func(*options)

type options struct {
	repository  string
	maxBlob     int64
	creds       Credentials
	credsKnown  bool
	logger      *slog.Logger
	chunkSize   int64
	nonceSource func() string
}

// WithRepository writes under this scratch repository instead of
// DefaultRepository(target.ProvidersRepository).
func WithRepository(name string) Option { return func(o *options) { o.repository = name } }

// WithMaxBlobSize is the largest monolithic upload tried (default 16 MiB,
// DefaultMaxBlobSize): sizes 64 KiB, 1 MiB, 4 MiB, 16 MiB... up to it.
// Larger values find higher limits and cost that much upload.
func WithMaxBlobSize(n int64) Option { return func(o *options) { o.maxBlob = n } }

// WithCredentials tells doctor what the caller found about credentials;
// without it the credentials row says it was not told.
func WithCredentials(c Credentials) Option {
	return func(o *options) { o.creds, o.credsKnown = c, true }
}

// WithLogger logs each probe at debug level.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithChunkSize is the chunk size the registry client uses for chunked
// uploads, for the detail and the size of the chunked probe (default
// 1 MiB, regclient's default).
func WithChunkSize(n int64) Option { return func(o *options) { o.chunkSize = n } }

// DefaultMaxBlobSize is the largest monolithic upload tried by default.
const DefaultMaxBlobSize = 16 << 20

// ScratchName is the last component of the default scratch repository.
// (OCI repository components must start with a letter or digit, so the
// "_doctor" of the issue is not a valid name.)
const ScratchName = "tofu-oci-mirror-doctor"

// DefaultRepository is the scratch repository for a providers repository
// template: the whole components before the first ${...}, then "/" +
// ScratchName; just ScratchName when the first component holds a variable. Registries that grant or create repositories by prefix
// (ECR templates, Harbor projects, GitLab groups) then treat it like the
// provider repositories.
func DefaultRepository(providersTemplate string) string {
	prefix, _, cut := strings.Cut(providersTemplate, "${")
	if cut {
		// Keep whole components: "team/providers-${type}" gives "team".
		i := strings.LastIndex(prefix, "/")
		prefix = prefix[:max(i, 0)]
	}
	prefix = strings.Trim(prefix, "/")
	if prefix == "" {
		return ScratchName
	}
	return prefix + "/" + ScratchName
}

// Run probes the target registry through rc, the client the target uses
// (target.Target.RegClient), writing only under the scratch repository. It
// returns an error only when it cannot start (an OCI layout target, an
// invalid repository name); every registry answer is a row.
func Run(ctx context.Context, target config.Target, rc *regclient.RegClient, opts ...Option) (*Report, error) {
	o := options{maxBlob: DefaultMaxBlobSize, chunkSize: 1 << 20, logger: slog.New(slog.DiscardHandler), nonceSource: randomNonce}
	for _, opt := range opts {
		opt(&o)
	}
	if _, ok := target.LayoutDir(); ok {
		return nil, fmt.Errorf("%w: target %s is an OCI layout directory, not a registry", ErrNotRegistry, target.Registry)
	}
	if o.repository == "" {
		o.repository = DefaultRepository(target.ProvidersRepository)
	}
	repoRef, err := ref.New(target.Registry + "/" + o.repository)
	if err != nil {
		return nil, fmt.Errorf("%w: scratch repository %q: %w", ErrInvalidRepository, o.repository, err)
	}
	repoRef.Tag = ""
	p := &prober{rc: rc, target: target, opts: o, repo: repoRef, nonce: o.nonceSource(),
		rep: &Report{Target: target.Registry, Repository: o.repository}}
	p.run(ctx)
	p.rep.ProvenanceMode = ProvenanceInUse(target.Provenance, p.rep.Provenance)
	return p.rep, nil
}

func randomNonce() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
