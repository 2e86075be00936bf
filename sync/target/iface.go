package target

import (
	"context"
	"io"

	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient/types/descriptor"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
)

// One-verb interfaces, composed below; a function takes the narrowest it
// needs. [Target] implements them all; a bundle's baseline and stage
// implement the parts export needs, so export plans and executes exactly as
// sync does.

// TagLister lists a repository's tags; a repository that does not exist
// has none.
type TagLister interface {
	Tags(ctx context.Context, repo string) ([]string, error)
}

// TagResolver reads the manifest a tag points at; a missing tag wraps
// errs.ErrNotFound.
type TagResolver interface {
	Manifest(ctx context.Context, repo, tag string) ([]byte, descriptor.Descriptor, error)
}

// ManifestFetcher reads a manifest by digest.
type ManifestFetcher interface {
	ManifestByDigest(ctx context.Context, repo string, d digest.Digest) ([]byte, descriptor.Descriptor, error)
}

// ManifestChecker reports whether a repository holds a manifest.
type ManifestChecker interface {
	ManifestExists(ctx context.Context, repo string, d digest.Digest) (bool, error)
}

// BlobChecker reports whether a repository holds a blob, with its size.
type BlobChecker interface {
	BlobExists(ctx context.Context, repo string, d descriptor.Descriptor) (descriptor.Descriptor, bool, error)
}

// BlobFetcher streams a blob.
type BlobFetcher interface {
	Blob(ctx context.Context, repo string, d descriptor.Descriptor) (io.ReadCloser, error)
}

// ReferrerLister lists the manifests whose subject is a given manifest.
type ReferrerLister interface {
	Referrers(ctx context.Context, repo string, subject digest.Digest, artifactType string) ([]descriptor.Descriptor, error)
}

// BlobPusher uploads a blob whose digest and size are known.
type BlobPusher interface {
	PutBlob(ctx context.Context, repo string, d descriptor.Descriptor, rdr io.Reader) error
}

// ManifestPusher pushes the exact bytes of a manifest, by digest (tag "")
// or under a tag.
type ManifestPusher interface {
	PutManifest(ctx context.Context, repo string, a manifest.Artifact, tag string) error
}

// TagReader is what planning reads of a target: its tags and the manifest
// behind a tag. (Not to be confused with bundle.Inventory, the JSON record
// of what a target holds, which a bundle.Baseline turns into one.)
type TagReader interface {
	TagLister
	TagResolver
}

// Publisher writes to a target. Blobs go first, manifests by digest next,
// and the tag last, so OpenTofu never sees an incomplete version.
type Publisher interface {
	BlobChecker
	BlobPusher
	ManifestPusher
}

// Reader is everything that reads a target: verify and the inventory use it.
type Reader interface {
	TagReader
	ManifestFetcher
	ManifestChecker
	BlobChecker
	BlobFetcher
	ReferrerLister
}

// Registry is a whole target: read and write.
type Registry interface {
	Reader
	Publisher
}

// ManifestDeleter deletes a manifest by digest. The registry drops every
// tag that points at it; a referrer is also taken off its subject's
// referrers list. Already gone is success; a registry that refuses
// deletes wraps [ErrDeleteForbidden].
type ManifestDeleter interface {
	DeleteManifest(ctx context.Context, repo string, d digest.Digest, referrer bool) error
}

// TagDeleter removes a tag and leaves its manifest. Already gone is
// success; a registry that refuses deletes wraps [ErrDeleteForbidden].
type TagDeleter interface {
	DeleteTag(ctx context.Context, repo, tag string) error
}
