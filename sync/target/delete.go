package target

import (
	"context"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient"
)

// DeleteManifest deletes the manifest with digest d from repo: one DELETE
// by digest (an OCI registry also drops the tags pointing at it). With
// referrer set the manifest is read first and removed from its subject's
// referrers list (on registries without the referrers API regclient
// rewrites the sha256-<hex> fallback tag, or deletes it when the list is
// empty, before the DELETE). A manifest already gone is success.
func (t *Target) DeleteManifest(ctx context.Context, repo string, d digest.Digest, referrer bool) error {
	r, err := t.digestRef(repo, d)
	if err != nil {
		return err
	}
	var opts []regclient.ManifestOpts
	if referrer {
		opts = append(opts, regclient.WithManifestCheckReferrers())
	}
	return deleteError(t.rc.ManifestDelete(ctx, r, opts...), repo, d.String())
}

// DeleteTag removes one tag, leaving the manifest it pointed at. It first
// makes sure the registry accepts deletes in repo (a DELETE of a digest
// no manifest has: "not found" means deletes are allowed), because
// regclient's TagDelete, when the registry refuses the tag DELETE, pushes
// a placeholder manifest over the tag and deletes that: on a registry
// refusing all deletes the placeholder would stay tagged. A tag already
// gone is success.
func (t *Target) DeleteTag(ctx context.Context, repo, tag string) error {
	if err := t.deletesAllowed(ctx, repo); err != nil {
		return err
	}
	r, err := t.Ref(repo, tag)
	if err != nil {
		return err
	}
	return deleteError(t.rc.TagDelete(ctx, r), repo, tag)
}

// probeDigest is the sha256 of nothing anyone pushes as a manifest.
var probeDigest = digest.SHA256.FromString("tofu-oci-mirror: delete probe")

// deletesAllowed probes repo once per Target.
func (t *Target) deletesAllowed(ctx context.Context, repo string) error {
	if err, ok := t.deleteProbes.Load(repo); ok {
		return errOrNil(err)
	}
	r, err := t.digestRef(repo, probeDigest)
	if err != nil {
		return err
	}
	err = deleteError(t.rc.ManifestDelete(ctx, r), repo, "(probe) "+probeDigest.String())
	t.deleteProbes.Store(repo, err)
	return err
}

func errOrNil(v any) error {
	if err, ok := v.(error); ok {
		return err
	}
	return nil
}

func deleteError(err error, repo, what string) error {
	switch {
	case err == nil, IsNotFound(err):
		return nil
	case deleteRefused(err):
		return fmt.Errorf("%w: deleting %s from %s: %w", ErrDeleteForbidden, what, repo, err)
	}
	return fmt.Errorf("%w: deleting %s from %s: %w", ErrTarget, what, repo, err)
}

// deleteRefused recognises a registry's refusal to delete: HTTP 405
// (distribution with deletes disabled: UNSUPPORTED), 403 and 401.
func deleteRefused(err error) bool {
	s := err.Error()
	for _, code := range []string{"[http 405]", "[http 403]", "[http 401]", "UNSUPPORTED", "unsupported"} {
		if strings.Contains(s, code) {
			return true
		}
	}
	return false
}
