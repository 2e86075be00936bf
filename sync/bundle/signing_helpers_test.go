package bundle_test

import (
	"archive/tar"
	"bytes"
	"io"
	"sync"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/bundle"
)

// bundleSigner stands for the connected side's bundle key, trusted by
// every inside plan of these tests (trust.bundle_keys).
var bundleSigner = sync.OnceValue(func() *openpgp.Entity {
	e, err := openpgp.NewEntity("bundle signer", "test", "signer@example.test", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		panic(err)
	}
	return e
})

// signed returns o with a signature of data's metadata by bundleSigner and
// that key trusted, as the connected side's export --sign-key and the
// inside's trust.bundle_keys would set it up. Data without a readable
// metadata entry gets no signature: import refuses it before the
// signature matters.
func signed(tb testing.TB, data []byte, o bundle.ImportOptions) bundle.ImportOptions {
	tb.Helper()
	o.BundleKeys = openpgp.EntityList{bundleSigner()}
	tr := tar.NewReader(bytes.NewReader(data))
	hdr, err := tr.Next()
	if err != nil || hdr.Name != bundle.MetadataFile || hdr.Size > 64<<20 {
		return o
	}
	meta, err := io.ReadAll(tr)
	if err != nil {
		return o
	}
	o.Signature = signBytes(tb, bundleSigner(), meta)
	return o
}

func signBytes(tb testing.TB, e *openpgp.Entity, data []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&buf, e, bytes.NewReader(data), nil); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}
