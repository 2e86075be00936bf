package upstream

import "errors"

// Sentinel errors of this package, wrapped with the thing they are about
// (host, URL, provider address, version, platform) and checked with
// errors.Is. Connection failures that outlast the retries wrap the network
// error instead; cancellation wraps the context's error.
var (
	// ErrPlatformNotOffered means the registry answered 404 to a provider
	// download request: that version is not built for that platform.
	ErrPlatformNotOffered = errors.New("platform not offered")
	// ErrNotFound means the registry does not know the provider or module
	// (404 on its versions endpoint, or no module in the answer).
	ErrNotFound = errors.New("not found")
	// ErrNoService means the host offers no such service: discovery answered
	// 404 or its document lacks the service id.
	ErrNoService = errors.New("service not offered")
	// ErrUnauthorized means the registry answered 401 or 403; a token
	// (TF_TOKEN_<host>) may be missing or wrong.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrChecksumMismatch means bytes or a size differ from what the registry
	// or the signed SHA256SUMS file promised.
	ErrChecksumMismatch = errors.New("checksum mismatch")
	// ErrSignature means the SHA256SUMS signature is bad or no offered key
	// made it.
	ErrSignature = errors.New("signature verification failed")
	// ErrNoSigningKeys means the registry returned no signing keys for a
	// provider on a host where OpenTofu requires them.
	ErrNoSigningKeys = errors.New("no signing keys")
	// ErrTooLarge means a response exceeded its size cap.
	ErrTooLarge = errors.New("response too large")
	// ErrProtocol means the upstream broke the protocol: malformed JSON or
	// checksum file, os/arch not echoed, a non-http(s) URL, a bad hash.
	ErrProtocol = errors.New("registry protocol violation")
	// ErrHTTPStatus means an unexpected HTTP status that has no sentinel of
	// its own (after retries, for retryable ones).
	ErrHTTPStatus = errors.New("unexpected HTTP status")
	// ErrStalled means a download received no data for the stall timeout.
	ErrStalled = errors.New("download stalled")
)
