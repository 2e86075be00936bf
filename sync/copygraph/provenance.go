package copygraph

import (
	"context"
	"fmt"

	"github.com/regclient/regclient/types/descriptor"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/target"
)

// Provenance writes a provider version's provenance into repo in the form
// store says (see [target.ProvenanceStore]): the referrer by digest, or
// the detached form under [manifest.ProvenanceTag], or nothing. stored is
// either form of it (sync builds the referrer, a bundle carries one) for
// the index; its layers must be in repo already (pushed through c).
// In auto mode a referrer the registry refuses is written as a tag
// instead, and in auto and tag mode a refused tag leaves the version to
// be published without provenance; warnings say so. Errors are what must
// fail the version: a strict referrers mode refused, or an outage.
func (c *Copier) Provenance(ctx context.Context, repo string, store *target.ProvenanceStore, index descriptor.Descriptor, stored manifest.Artifact) (target.ProvenanceForm, []string, error) {
	referrer, detached, err := manifest.ProvenanceForms(stored.Raw, index)
	if err != nil {
		return target.FormNone, nil, err
	}
	var warnings []string
	form := store.Form()
	if form == target.FormReferrer {
		err := c.Manifest(ctx, repo, referrer)
		if err == nil {
			return form, nil, nil
		}
		fallBack, err := store.ReferrerFailed(err)
		if !fallBack {
			return form, nil, err
		}
		form = store.Form()
		warnings = append(warnings, fmt.Sprintf("provenance kept under tag %s: %s", manifest.ProvenanceTag(index.Digest), store))
	}
	if form == target.FormTag {
		err := c.Tag(ctx, repo, detached, manifest.ProvenanceTag(index.Digest))
		if err == nil {
			return form, warnings, nil
		}
		w, err := store.TagFailed(err)
		if err != nil {
			return form, warnings, err
		}
		return target.FormNone, append(warnings, w), nil
	}
	if store.Mode() != config.ProvenanceOff {
		warnings = append(warnings, "provenance not stored: "+store.String())
	}
	return target.FormNone, warnings, nil
}
