package sync

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient/types/descriptor"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/upstream"
)

// MaxProvenanceLayerSize bounds each layer of a provenance artifact
// (SHA256SUMS, signature, key) read back, so a hostile registry or bundle
// cannot make a check hold a large blob in memory.
const MaxProvenanceLayerSize = 4 << 20

// CheckStoredProvenance verifies offline, again, the provenance artifact
// kept next to a provider index (see [manifest.Provenance]): raw is its
// manifest, which must have subject as its subject, and read returns the
// bytes of one of its layers (from the registry, from a bundle). The
// SHA256SUMS must verify against the stored signature and key as
// [upstream.CheckProvenance] checks it; without a signature it passes, with
// a warning, only for providers of registry.opentofu.org (OpenTofu's
// exception, refused when OPENTOFU_ENFORCE_GPG_VALIDATION=true). address is
// the provider's "host/namespace/type". Errors wrap [ErrProvenance].
func CheckStoredProvenance(address string, raw []byte, subject digest.Digest, read func(descriptor.Descriptor) ([]byte, error)) (*upstream.Provenance, error) {
	var pm struct {
		ArtifactType string                  `json:"artifactType"`
		Subject      *descriptor.Descriptor  `json:"subject"`
		Layers       []descriptor.Descriptor `json:"layers"`
	}
	if len(raw) > manifest.MaxManifestSize {
		return nil, fmt.Errorf("%w: provenance manifest is %d bytes", ErrProvenance, len(raw))
	}
	if err := json.Unmarshal(raw, &pm); err != nil {
		return nil, fmt.Errorf("%w: provenance manifest: %v", ErrProvenance, err)
	}
	if pm.ArtifactType != manifest.ProvenanceArtifactType {
		return nil, fmt.Errorf("%w: artifact type %q, want %s", ErrProvenance, pm.ArtifactType, manifest.ProvenanceArtifactType)
	}
	if pm.Subject == nil || pm.Subject.Digest != subject {
		return nil, fmt.Errorf("%w: provenance manifest does not refer to %s", ErrProvenance, subject)
	}
	var sums, sig []byte
	var keys []string
	for _, l := range pm.Layers {
		if l.MediaType != manifest.SHA256SUMSMediaType && l.MediaType != manifest.SignatureMediaType && l.MediaType != manifest.PublicKeyMediaType {
			continue
		}
		if l.Size < 0 || l.Size > MaxProvenanceLayerSize {
			return nil, fmt.Errorf("%w: layer %s (%s) is %d bytes", ErrProvenance, l.Digest, l.MediaType, l.Size)
		}
		data, err := read(l)
		if err != nil {
			return nil, fmt.Errorf("%w: layer %s (%s): %w", ErrProvenance, l.Digest, l.MediaType, err)
		}
		switch l.MediaType {
		case manifest.SHA256SUMSMediaType:
			sums = data
		case manifest.SignatureMediaType:
			sig = data
		case manifest.PublicKeyMediaType:
			keys = append(keys, string(data))
		}
	}
	if sums == nil {
		return nil, fmt.Errorf("%w: no SHA256SUMS layer", ErrProvenance)
	}
	allowUnsigned := sig == nil && strings.HasPrefix(address, config.DefaultHostname+"/") &&
		os.Getenv(upstream.EnforceGPGValidationEnv) != "true"
	prov, err := upstream.CheckProvenance(sums, sig, keys, allowUnsigned)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProvenance, err)
	}
	return prov, nil
}

// CheckPackageSigned checks that the signed SHA256SUMS lists a platform
// manifest's zip layer as the package of this version and platform
// ("linux_amd64"): under the file name of its title annotation, which must
// end in _<version>_<os>_<arch>.zip as release files are named (so a
// signed package of another version cannot be relabelled), or, for tags
// pushed by other tools without a title, under a name with that ending.
// A miss wraps [upstream.ErrChecksumMismatch].
func CheckPackageSigned(prov *upstream.Provenance, layer descriptor.Descriptor, version, platform string) error {
	suffix := "_" + version + "_" + platform + ".zip"
	if name := layer.Annotations[manifest.TitleAnnotation]; name != "" {
		if !strings.HasSuffix(name, suffix) {
			return fmt.Errorf("package %s is named %q, not the *%s of this version and platform: %w", layer.Digest, name, suffix, upstream.ErrChecksumMismatch)
		}
		return prov.CheckFile(name, layer.Digest.Encoded())
	}
	for name, sum := range prov.Sums {
		if sum == layer.Digest.Encoded() && strings.HasSuffix(name, suffix) {
			return nil
		}
	}
	return fmt.Errorf("package %s is not in the signed SHA256SUMS as a *%s file: %w", layer.Digest, suffix, upstream.ErrChecksumMismatch)
}

// checkProvenance re-verifies every provenance artifact referring to the
// index and that each platform's layer is the signed SHA256SUMS line for
// its file name. It returns the parsed sums of a provenance that verified,
// or nil.
func (v *verifier) checkProvenance(ctx context.Context, f finding, index digest.Digest, platforms []platformCheck) map[string]string {
	refs, err := v.target.Referrers(ctx, f.e.repo, index, manifest.ProvenanceArtifactType)
	if err != nil {
		if ctx.Err() == nil {
			v.problem(f, ProblemUnreadable, "listing referrers of index %s: %v", index, err)
		}
		return nil
	}
	if len(refs) == 0 {
		v.warn(f, WarningNoProvenance, "no provenance (signed SHA256SUMS) refers to index %s: packages cannot be checked against upstream's signature (tag pushed by another tool?)", index)
		return nil
	}
	var verified map[string]string
	for _, ref := range refs {
		prov, err := v.readProvenance(ctx, f, index, ref.Digest)
		if err != nil {
			if ctx.Err() == nil {
				v.problem(f, ProblemProvenance, "provenance %s: %v", ref.Digest, err)
			}
			continue
		}
		for _, w := range prov.Warnings {
			v.warn(f, WarningProvenance, "provenance %s: %s", ref.Digest, w)
		}
		good := true
		for _, pc := range platforms {
			if !pc.ok {
				continue
			}
			if err := CheckPackageSigned(prov, pc.layer, f.version, pc.key); err != nil {
				good = false
				v.problem(f.at(pc.key), ProblemProvenance, "layer %s: %v (provenance %s)", pc.layer.Digest, err, ref.Digest)
			}
		}
		if good && verified == nil {
			verified = prov.Sums
		}
	}
	return verified
}

func (v *verifier) readProvenance(ctx context.Context, f finding, index, d digest.Digest) (*upstream.Provenance, error) {
	raw, _, err := v.target.ManifestByDigest(ctx, f.e.repo, d)
	if err != nil {
		return nil, err
	}
	return CheckStoredProvenance(f.e.address, raw, index, func(l descriptor.Descriptor) ([]byte, error) {
		return v.readSmall(ctx, f.e.repo, l)
	})
}

// readSmall reads a blob of at most MaxProvenanceLayerSize bytes and
// checks its digest.
func (v *verifier) readSmall(ctx context.Context, repo string, d descriptor.Descriptor) ([]byte, error) {
	rdr, err := v.target.Blob(ctx, repo, d)
	if err != nil {
		return nil, err
	}
	defer rdr.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, io.LimitReader(rdr, MaxProvenanceLayerSize+1)); err != nil {
		return nil, err
	}
	if buf.Len() > MaxProvenanceLayerSize {
		return nil, fmt.Errorf("blob %s is larger than %d bytes", d.Digest, MaxProvenanceLayerSize)
	}
	if got := digest.SHA256.FromBytes(buf.Bytes()); got != d.Digest {
		return nil, fmt.Errorf("blob %s holds content hashing to %s", d.Digest, got)
	}
	return buf.Bytes(), nil
}

// releasesPlatform reports whether a signed SHA256SUMS lists a package for
// platform ("linux_amd64"): provider release files are named
// terraform-provider-<type>_<version>_<os>_<arch>.zip.
func releasesPlatform(sums map[string]string, platform string) bool {
	suffix := "_" + platform + ".zip"
	for name := range sums {
		if strings.HasSuffix(name, suffix) {
			return true
		}
	}
	return false
}
