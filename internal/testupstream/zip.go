package testupstream

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"time"
)

// zipTime is the modification time of every entry, so zips are the same
// bytes on every run.
var zipTime = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// BuildProviderZip returns a deterministic zip holding one executable entry,
// binaryName with content (deflated, mode 0755, a fixed timestamp), shaped
// like a provider release zip. Use it to serve a real provider binary with
// AddProviderZip.
func BuildProviderZip(binaryName string, content []byte) []byte {
	var buf bytes.Buffer
	if err := writeProviderZip(&buf, binaryName, bytes.NewReader(content), zip.Deflate); err != nil {
		// Writing to a bytes.Buffer from a bytes.Reader cannot fail.
		panic("testupstream: building zip: " + err.Error())
	}
	return buf.Bytes()
}

func writeProviderZip(w io.Writer, binaryName string, content io.Reader, method uint16) error {
	zw := zip.NewWriter(w)
	hdr := &zip.FileHeader{Name: binaryName, Method: method, Modified: zipTime}
	hdr.SetMode(0o755)
	fw, err := zw.CreateHeader(hdr)
	if err != nil {
		return err
	}
	if _, err := io.Copy(fw, content); err != nil {
		return err
	}
	return zw.Close()
}

// synthetic describes a generated zip: binaryName holding size pseudo-random
// bytes drawn from seed, stored uncompressed (random bytes do not deflate).
type synthetic struct {
	binaryName string
	seed       [32]byte
	size       int64
}

func newSynthetic(identity, binaryName string, size int64) synthetic {
	return synthetic{binaryName: binaryName, seed: sha256.Sum256([]byte(identity)), size: size}
}

func (g synthetic) writeTo(w io.Writer) error {
	content := io.LimitReader(rand.NewChaCha8(g.seed), g.size)
	return writeProviderZip(w, g.binaryName, content, zip.Store)
}
