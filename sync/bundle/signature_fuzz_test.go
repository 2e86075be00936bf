package bundle_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/bundle"
)

// FuzzBundleSignature feeds arbitrary signature bytes to import with a
// real bundle: nothing is pushed unless the bytes are a valid signature of
// its metadata by the trusted key, and an import that did not verify fails
// with ErrUnsignedBundle or ErrBundleSignature.
func FuzzBundleSignature(f *testing.F) {
	h := newImportFuzz(f)
	data := readCorpusBytes(f, "FuzzImportBundle", seedFull)
	tr := tar.NewReader(bytes.NewReader(data))
	if _, err := tr.Next(); err != nil {
		f.Fatal(err)
	}
	meta, _ := io.ReadAll(tr)
	good := signBytes(f, bundleSigner(), meta)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{})
	f.Add([]byte("-----BEGIN PGP SIGNATURE-----\n\nAAAA\n-----END PGP SIGNATURE-----\n"))
	f.Add(signBytes(f, bundleSigner(), append(meta, ' ')))
	f.Fuzz(func(t *testing.T, sig []byte) {
		tg := h.base.clone()
		writes := tg.writes
		_, err := bundle.Import(context.Background(), h.cfg, tg, bytes.NewReader(data),
			bundle.ImportOptions{SpoolDir: t.TempDir(), Signature: sig, BundleKeys: openpgp.EntityList{bundleSigner()}})
		_, verr := openpgp.CheckArmoredDetachedSignature(openpgp.EntityList{bundleSigner()}, bytes.NewReader(meta), bytes.NewReader(sig), nil)
		if verr == nil {
			return // a real signature: the import may proceed
		}
		if !errors.Is(err, bundle.ErrUnsignedBundle) && !errors.Is(err, bundle.ErrBundleSignature) {
			t.Fatalf("an unverifiable signature gave %v", err)
		}
		if tg.writes != writes {
			t.Fatalf("an unverifiable signature let %d pushes through", tg.writes-writes)
		}
	})
}
