package bundle

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// SignatureSuffix is appended to a bundle's path (for split bundles, to
// the path the part manifest is named after) to name its detached
// signature.
const SignatureSuffix = ".sig"

// The signature covers the bundle's metadata, the first tar entry, which
// names the digest and size of everything inside: once it verifies, import
// checks every entry against it before anything is uploaded.

// Sign returns an ASCII-armored detached OpenPGP signature of the
// bundle's metadata, made by signer (whose private key is decrypted).
func (e *Exported) Sign(signer *openpgp.Entity) ([]byte, error) {
	meta, err := e.metadataBytes()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&buf, signer, bytes.NewReader(meta), &packet.Config{}); err != nil {
		return nil, fmt.Errorf("signing the bundle: %w", err)
	}
	return buf.Bytes(), nil
}

// LoadSigningKey reads an ASCII-armored OpenPGP private key from path and
// decrypts it with passphrase when it is protected.
func LoadSigningKey(path string, passphrase []byte) (*openpgp.Entity, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	ring, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("signing key %s: not an ASCII-armored OpenPGP key: %v", path, err)
	}
	var signer *openpgp.Entity
	for _, e := range ring {
		if e.PrivateKey != nil {
			signer = e
			break
		}
	}
	if signer == nil {
		return nil, fmt.Errorf("signing key %s: holds no private key", path)
	}
	keys := []*packet.PrivateKey{signer.PrivateKey}
	for _, sk := range signer.Subkeys {
		if sk.PrivateKey != nil {
			keys = append(keys, sk.PrivateKey)
		}
	}
	for _, k := range keys {
		if !k.Encrypted {
			continue
		}
		if len(passphrase) == 0 {
			return nil, fmt.Errorf("signing key %s is protected by a passphrase: set TOFU_OCI_MIRROR_SIGN_PASSPHRASE", path)
		}
		if err := k.Decrypt(passphrase); err != nil {
			return nil, fmt.Errorf("signing key %s: wrong passphrase: %v", path, err)
		}
	}
	return signer, nil
}

// LoadTrustedKeys reads the ASCII-armored OpenPGP public keys import
// accepts bundle signatures from (trust.bundle_keys).
func LoadTrustedKeys(paths []string) (openpgp.EntityList, error) {
	var all openpgp.EntityList
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("trust.bundle_keys: %w", err)
		}
		ring, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("trust.bundle_keys: %s is not an ASCII-armored OpenPGP public key: %v", p, err)
		}
		all = append(all, ring...)
	}
	return all, nil
}

// checkSignature verifies sig over the metadata bytes with the trusted
// keys; it returns the signer's key id.
func checkSignature(meta, sig []byte, trusted openpgp.EntityList) (string, error) {
	if len(sig) == 0 {
		return "", fmt.Errorf("%w: the bundle has no signature (%s next to it, or --signature FILE)", ErrUnsignedBundle, SignatureSuffix)
	}
	if len(trusted) == 0 {
		return "", fmt.Errorf("%w: trust.bundle_keys names no key to check the bundle's signature with", ErrUnsignedBundle)
	}
	if block, err := armor.Decode(bytes.NewReader(sig)); err != nil || block.Type != openpgp.SignatureType {
		return "", fmt.Errorf("%w: the signature is not an ASCII-armored OpenPGP signature", ErrBundleSignature)
	}
	signer, err := openpgp.CheckArmoredDetachedSignature(trusted, bytes.NewReader(meta), bytes.NewReader(sig), nil)
	if err != nil {
		return "", fmt.Errorf("%w: not signed by a key of trust.bundle_keys: %v", ErrBundleSignature, err)
	}
	if signer == nil || signer.PrimaryKey == nil {
		return "", errors.New("bundle signature: no signer")
	}
	return signer.PrimaryKey.KeyIdString(), nil
}

// SignaturePath is where the signature of the bundle named by path (as
// [OpenBundle] accepts it: a tar, a part manifest, the parts' base path,
// or their directory) lies.
func SignaturePath(path string) string {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		if matches, _ := filepath.Glob(filepath.Join(path, "*"+PartsSuffix)); len(matches) == 1 {
			path = matches[0]
		}
	}
	return strings.TrimSuffix(path, PartsSuffix) + SignatureSuffix
}
