package provenance

import (
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient/types/descriptor"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/upstream"
)

// MaxLayerSize bounds each layer of a provenance artifact
// (SHA256SUMS, signature, key) read back, so a hostile registry or bundle
// cannot make a check hold a large blob in memory.
const MaxLayerSize = 4 << 20

// CheckStored verifies offline, again, the provenance artifact
// kept next to a provider index (see [manifest.Provenance]): raw is its
// manifest, which must have subject as its subject, and read returns the
// bytes of one of its layers (from the registry, from a bundle). The
// SHA256SUMS must verify against the stored signature with a key p trusts
// ([Policy.CheckSigned]: the stored key counts only when p trusts carried
// keys); without a valid signature it passes, with a warning, only where p
// allows it. address is the provider's "host/namespace/type". Errors wrap
// [ErrProvenance].
func (p Policy) CheckStored(address string, raw []byte, subject digest.Digest, read func(descriptor.Descriptor) ([]byte, error)) (*upstream.Provenance, error) {
	pm, err := manifest.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: provenance manifest: %w", ErrProvenance, err)
	}
	if pm.ArtifactType != manifest.ProvenanceArtifactType {
		return nil, fmt.Errorf("%w: artifact type %q, want %s", ErrProvenance, pm.ArtifactType, manifest.ProvenanceArtifactType)
	}
	if pm.Subject == nil || pm.Subject.Digest != subject {
		return nil, fmt.Errorf("%w: provenance manifest does not refer to %s", ErrProvenance, subject)
	}
	var sums, sig []byte
	var keys []string
	seen := map[string]bool{}
	for _, l := range pm.Layers {
		if !IsLayer(l.MediaType) {
			continue
		}
		if seen[l.MediaType] {
			// One release has one SHA256SUMS, one signature and the one key
			// that made it: more is someone's attempt to slip another in.
			return nil, fmt.Errorf("%w: more than one %s layer", ErrProvenance, l.MediaType)
		}
		seen[l.MediaType] = true
		if l.Size < 0 || l.Size > MaxLayerSize {
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
	prov, err := p.CheckSigned(address, sums, sig, keys)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProvenance, err)
	}
	return prov, nil
}

// CheckPackageSigned checks that the signed SHA256SUMS lists a platform
// manifest's zip layer as the package of this version and platform
// ("linux_amd64"): under the file name of its title annotation, which must
// be terraform-provider-<type>_<version>_<os>_<arch>.zip as release files
// are named (so a signed package of another provider, version or platform
// cannot be relabelled), or, for tags pushed by other tools without a
// title, under that name.
// A miss wraps [upstream.ErrChecksumMismatch].
func CheckPackageSigned(prov *upstream.Provenance, layer descriptor.Descriptor, providerType, version, platform string) error {
	want := "terraform-provider-" + providerType + "_" + version + "_" + platform + ".zip"
	if name := layer.Annotations[manifest.TitleAnnotation]; name != "" {
		if name != want {
			return fmt.Errorf("package %s is named %q, not %s, the file of this provider, version and platform: %w", layer.Digest, name, want, upstream.ErrChecksumMismatch)
		}
		return prov.CheckFile(name, layer.Digest.Encoded())
	}
	if sum, ok := prov.Sums[want]; ok && sum == layer.Digest.Encoded() {
		return nil
	}
	return fmt.Errorf("package %s is not in the signed SHA256SUMS as %s: %w", layer.Digest, want, upstream.ErrChecksumMismatch)
}

// ReleasesPlatform reports whether a signed SHA256SUMS lists a package for
// platform ("linux_amd64"): provider release files are named
// terraform-provider-<type>_<version>_<os>_<arch>.zip.
func ReleasesPlatform(sums map[string]string, platform string) bool {
	suffix := "_" + platform + ".zip"
	for name := range sums {
		if strings.HasSuffix(name, suffix) {
			return true
		}
	}
	return false
}

// CheckRelease re-verifies the provenance artifact raw kept for the index
// of a provider version (see [Policy.CheckStored]), then that its signed
// SHA256SUMS lists each package of layers (platform "os_arch" → the zip
// layer of that platform's manifest) as that version's file for that
// platform (see [CheckPackageSigned]). It returns the verified provenance
// and, for each platform whose package it does not sign, why; the error is
// for an artifact that does not verify at all. Verify and import both
// decide with it.
func (p Policy) CheckRelease(address, version string, raw []byte, index digest.Digest, read func(descriptor.Descriptor) ([]byte, error), layers map[string]descriptor.Descriptor) (*upstream.Provenance, map[string]error, error) {
	prov, err := p.CheckStored(address, raw, index, read)
	if err != nil {
		return nil, nil, err
	}
	unsigned := map[string]error{}
	providerType := address[strings.LastIndexByte(address, '/')+1:]
	for key, layer := range layers {
		if err := CheckPackageSigned(prov, layer, providerType, version, key); err != nil {
			unsigned[key] = err
		}
	}
	return prov, unsigned, nil
}
