package provenance

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient/types/descriptor"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/upstream"
)

// Layer is one small file of a provenance artifact and its bytes.
type Layer struct {
	Descriptor descriptor.Descriptor
	Data       []byte
}

// Artifact builds the referrer that keeps p's signed SHA256SUMS, signature
// and key next to the provider index subject, and returns its layers
// (absent files are left out: an unsigned release keeps only SHA256SUMS).
// Push the layers, then the artifact by digest.
func Artifact(subject descriptor.Descriptor, p *upstream.Provenance) (manifest.Artifact, []Layer, error) {
	var layers []Layer
	var descs [3]descriptor.Descriptor
	for i, f := range []struct {
		mediaType, title string
		data             []byte
	}{
		{manifest.SHA256SUMSMediaType, "SHA256SUMS", p.SHA256SUMS},
		{manifest.SignatureMediaType, "SHA256SUMS.sig", p.Signature},
		{manifest.PublicKeyMediaType, "signing-key.asc", []byte(p.SigningKey)},
	} {
		if len(f.data) == 0 {
			continue
		}
		d := descriptor.Descriptor{MediaType: f.mediaType, Digest: digest.SHA256.FromBytes(f.data), Size: int64(len(f.data)),
			Annotations: map[string]string{manifest.TitleAnnotation: f.title}}
		descs[i] = d
		layers = append(layers, Layer{Descriptor: d, Data: f.data})
	}
	a, err := manifest.Provenance(subject, descs[0], descs[1], descs[2])
	return a, layers, err
}

// IsLayer reports whether a media type is one of a provenance artifact's layers.
func IsLayer(mediaType string) bool {
	return mediaType == manifest.SHA256SUMSMediaType || mediaType == manifest.SignatureMediaType || mediaType == manifest.PublicKeyMediaType
}

// BlobFetcher streams a blob (the target's Blob method).
type BlobFetcher interface {
	Blob(ctx context.Context, repo string, d descriptor.Descriptor) (io.ReadCloser, error)
}

// ReadLayer reads a provenance layer of at most [MaxLayerSize] bytes from
// repo and checks its digest.
func ReadLayer(ctx context.Context, t BlobFetcher, repo string, d descriptor.Descriptor) ([]byte, error) {
	rdr, err := t.Blob(ctx, repo, d)
	if err != nil {
		return nil, err
	}
	defer rdr.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, io.LimitReader(rdr, MaxLayerSize+1)); err != nil {
		return nil, err
	}
	if buf.Len() > MaxLayerSize {
		return nil, fmt.Errorf("blob %s is larger than %d bytes", d.Digest, MaxLayerSize)
	}
	if got := digest.SHA256.FromBytes(buf.Bytes()); got != d.Digest {
		return nil, fmt.Errorf("blob %s holds content hashing to %s", d.Digest, got)
	}
	return buf.Bytes(), nil
}
