package target

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
)

// explain names what a registry refused, with its own message and what to
// configure: a missing repository, or (for a manifest, raw) media types
// off an allowlist. Other errors come back as they are. A manifest with
// subject refused with 405 is left to the [ProvenanceStore].
func explain(repo string, raw []byte, err error) error {
	r := RefusalOf(err)
	switch {
	case r.NameUnknown():
		return fmt.Errorf("%w: %s (%s); %s: %w", ErrRepositoryMissing, repo, r, HintCreateRepository(repo), err)
	case raw == nil || !r.ContentRefused():
		return err
	}
	p, perr := manifest.Parse(raw)
	if perr != nil {
		return err
	}
	if p.Subject != nil && (r.Status == 405 || r.Code == "UNSUPPORTED") {
		return err
	}
	types := mediaTypesOf(p)
	return fmt.Errorf("%w (%s): %s; %s: %w", ErrMediaTypeRefused, strings.Join(types, ", "), r, HintMediaType(strings.Join(types, ", ")), err)
}

// mediaTypesOf lists a manifest's types an allowlist may refuse (not the
// OCI image types every registry takes), each once, in order.
func mediaTypesOf(p *manifest.Parsed) []string {
	var out []string
	add := func(t string) {
		if t != "" && !strings.HasPrefix(t, "application/vnd.oci.") && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	add(p.ArtifactType)
	if p.Config != nil {
		add(p.Config.MediaType)
	}
	for _, l := range p.Layers {
		add(l.MediaType)
	}
	for _, m := range p.Manifests {
		add(m.ArtifactType)
	}
	if len(out) == 0 {
		out = append(out, p.MediaType)
	}
	return out
}

// HintMediaType says what to configure when a registry refuses media
// types (what names them), for the registries we know.
func HintMediaType(what string) string {
	return fmt.Sprintf("the registry refused %s: Quay: set FEATURE_GENERAL_OCI_SUPPORT: true and list under ALLOWED_OCI_ARTIFACT_TYPES the config type application/vnd.oci.empty.v1+json with layer types archive/zip, text/plain; charset=utf-8, application/pgp-signature and application/pgp-keys; GitLab: its registry accepts listed media types only (gitlab-org/container-registry#973), upgrade to a release that lists OpenTofu's; Nexus: use an OCI (not Docker) repository; tofu-oci-mirror doctor shows what this registry takes", what)
}

// HintCreateRepository says what to configure when repositories must
// exist before the first push.
func HintCreateRepository(repo string) string {
	prefix := repo
	if i := strings.LastIndex(repo, "/"); i > 0 {
		prefix = repo[:i]
	}
	first, _, _ := strings.Cut(repo, "/")
	return fmt.Sprintf("repositories must exist before the first push: ECR: turn on create-on-push (a repository creation template for prefix %q applied for CREATE_ON_PUSH, aws ecr create-repository-creation-template) or create every provider repository beforehand (aws ecr create-repository); Harbor: create the project %q; GitLab: the path must start with an existing project", prefix, first)
}
