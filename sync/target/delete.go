package target

import (
	"context"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient"
)

// DeleteManifest deletes the manifest with digest d from repo: one DELETE
// by digest, which on an OCI registry also drops every tag pointing at it
// (so a version tag and its index go in one request). With referrer set
// the manifest is read first and removed from its subject's referrers
// list (on registries without the referrers API regclient rewrites the
// sha256-<hex> fallback tag, or deletes it when the list is empty, before
// the DELETE). A manifest already gone is success. Tags are never deleted
// through regclient's TagDelete: on a registry that refuses the DELETE it
// would first push a placeholder manifest over the tag.
func (t *Target) DeleteManifest(ctx context.Context, repo string, d digest.Digest, referrer bool) error {
	r, err := t.digestRef(repo, d)
	if err != nil {
		return err
	}
	var opts []regclient.ManifestOpts
	if referrer {
		opts = append(opts, regclient.WithManifestCheckReferrers())
	}
	err = t.rc.ManifestDelete(ctx, r, opts...)
	switch {
	case err == nil:
		return nil
	case IsNotFound(err):
		return nil
	case deleteRefused(err):
		return fmt.Errorf("%w: deleting %s from %s: %w", ErrDeleteForbidden, d, repo, err)
	}
	return fmt.Errorf("%w: deleting %s from %s: %w", ErrTarget, d, repo, err)
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
