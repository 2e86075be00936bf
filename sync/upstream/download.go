package upstream

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Spool is what DownloadPackage and Fetch need to retry a download that
// broke off midway: rewind and cut the destination. *os.File has both.
type Spool interface {
	io.WriteSeeker
	Truncate(size int64) error
}

// SizeHinter is a destination that wants the body's size as soon as the
// answer's headers give it (Content-Length), before the first byte: an
// upload streaming from it can then start at once (spool.Tee is one).
type SizeHinter interface {
	ExpectSize(n int64)
}

// DownloadPackage streams pkg.DownloadURL into w, without credentials,
// hashing while streaming, and returns the lower-case hex SHA-256 and byte
// count. A hash other than pkg.SHA256, or a size other than pkg.Size (when
// known, checked against Content-Length before reading), gives an error
// wrapping ErrChecksumMismatch that names the provider, version, platform and
// both values. More than WithMaxPackageSize bytes gives ErrTooLarge.
//
// HTTP failures (connection errors, 429, 5xx) are retried before any byte is
// written. A body that breaks off midway is retried from scratch only when w
// is a Spool (pass an *os.File spool file); w is then rewound to where it
// stood on entry and truncated there.
func (c *Client) DownloadPackage(ctx context.Context, pkg *ProviderPackage, w io.Writer) (sha256hex string, n int64, err error) {
	u, err := parseHTTPURL(pkg.DownloadURL)
	if err != nil {
		return "", 0, fmt.Errorf("%s: download_url: %w", pkg, err)
	}
	if pkg.Size > c.opts.maxPackageSize {
		return "", 0, fmt.Errorf("%s: package size %d exceeds the limit of %d bytes: %w", pkg, pkg.Size, c.opts.maxPackageSize, ErrTooLarge)
	}
	sum, n, err := c.stream(ctx, u, "", w, c.opts.maxPackageSize, pkg.Size)
	if err != nil {
		return "", n, fmt.Errorf("%s: %w", pkg, err)
	}
	if pkg.Size >= 0 && n != pkg.Size {
		return "", n, fmt.Errorf("%s: downloaded %d bytes from %s, registry says %d: %w", pkg, n, redactURL(u), pkg.Size, ErrChecksumMismatch)
	}
	if want := strings.ToLower(pkg.SHA256); sum != want {
		return "", n, fmt.Errorf("%s: downloaded from %s: got sha256 %s, registry says %s: %w", pkg, redactURL(u), sum, want, ErrChecksumMismatch)
	}
	return sum, n, nil
}

// Fetch streams rawURL (http or https) into w and returns the byte count;
// more than maxBytes (0 or less means the WithMaxPackageSize limit) gives
// ErrTooLarge. It sends no registry credentials; the WithGitHubToken token
// goes to github.com, api.github.com and codeload.github.com only (and is
// dropped if they redirect elsewhere). Retries are as for DownloadPackage.
func (c *Client) Fetch(ctx context.Context, rawURL string, w io.Writer, maxBytes int64) (int64, error) {
	u, err := parseHTTPURL(rawURL)
	if err != nil {
		return 0, fmt.Errorf("fetching: %w", err)
	}
	if maxBytes <= 0 {
		maxBytes = c.opts.maxPackageSize
	}
	token := ""
	if c.opts.githubToken != "" && u.Scheme == "https" && isGitHubHost(u.Host) {
		token = c.opts.githubToken
	}
	_, n, err := c.stream(ctx, u, token, w, maxBytes, -1, gitHubHosts...)
	if err != nil {
		return n, fmt.Errorf("fetching %s: %w", redactURL(u), err)
	}
	return n, nil
}

// gitHubHosts may receive the GitHub token, also across redirects among
// them (github.com sends archive downloads to codeload.github.com).
var gitHubHosts = []string{"github.com", "api.github.com", "codeload.github.com"}

func isGitHubHost(host string) bool {
	for _, h := range gitHubHosts {
		if normalizeHost(host) == h {
			return true
		}
	}
	return false
}

// stream downloads u into w, retrying a broken-off body from scratch when w
// is a Spool. wantSize < 0 means unknown.
func (c *Client) stream(ctx context.Context, u *url.URL, token string, w io.Writer, maxBytes, wantSize int64, tokenHosts ...string) (string, int64, error) {
	spool, canRewind := w.(Spool)
	var start int64
	if canRewind {
		var err error
		if start, err = spool.Seek(0, io.SeekCurrent); err != nil {
			canRewind = false
		}
	}
	attempts := 1
	if canRewind {
		attempts += c.opts.retryMax
	}
	var lastErr error
	for attempt := range attempts {
		if attempt > 0 {
			wait := c.backoff(c.opts.retryMinWait, c.opts.retryMaxWait, attempt-1, nil)
			c.log.Warn("retrying download from scratch", "url", redactURL(u), "attempt", attempt+1, "wait", wait, "reason", lastErr.Error())
			if err := sleep(ctx, wait); err != nil {
				return "", 0, fmt.Errorf("%w (after: %v)", err, lastErr)
			}
			if _, err := spool.Seek(start, io.SeekStart); err != nil {
				return "", 0, fmt.Errorf("rewinding spool for retry: %w (after: %v)", err, lastErr)
			}
			if err := spool.Truncate(start); err != nil {
				return "", 0, fmt.Errorf("truncating spool for retry: %w (after: %v)", err, lastErr)
			}
		}
		sum, n, retryable, err := c.streamOnce(ctx, u, token, w, maxBytes, wantSize, tokenHosts)
		if err == nil {
			return sum, n, nil
		}
		if !retryable || ctx.Err() != nil {
			return "", n, err
		}
		lastErr = err
	}
	if attempts == 1 {
		return "", 0, lastErr
	}
	return "", 0, fmt.Errorf("giving up after %d attempts: %w", attempts, lastErr)
}

// readTracker remembers whether a copy failed reading (the network: worth
// retrying) rather than writing (the caller's w: not).
type readTracker struct {
	r   io.Reader
	err error
}

func (t *readTracker) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF {
		t.err = err
	}
	return n, err
}

func (c *Client) streamOnce(ctx context.Context, u *url.URL, token string, w io.Writer, maxBytes, wantSize int64, tokenHosts []string) (sum string, n int64, retryable bool, err error) {
	resp, err := c.get(ctx, c.dl, u, token, "", tokenHosts...)
	if err != nil {
		return "", 0, false, err // the HTTP layer has already retried
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", 0, false, statusError(resp)
	}
	final := redactURL(resp.Request.URL)
	if resp.ContentLength > maxBytes {
		return "", 0, false, fmt.Errorf("GET %s: Content-Length %d exceeds the limit of %d bytes: %w", final, resp.ContentLength, maxBytes, ErrTooLarge)
	}
	if wantSize >= 0 && resp.ContentLength >= 0 && resp.ContentLength != wantSize {
		return "", 0, false, fmt.Errorf("GET %s: Content-Length %d, registry says %d bytes: %w", final, resp.ContentLength, wantSize, ErrChecksumMismatch)
	}
	limit := maxBytes
	if wantSize >= 0 {
		limit = min(limit, wantSize)
	}
	if hint, ok := w.(SizeHinter); ok && resp.ContentLength >= 0 {
		hint.ExpectSize(resp.ContentLength)
	}
	h := sha256.New()
	src := &readTracker{r: io.LimitReader(resp.Body, limit+1)}
	n, err = io.Copy(io.MultiWriter(w, h), src)
	if err != nil {
		if src.err != nil {
			return "", n, true, fmt.Errorf("GET %s: reading body after %d bytes: %w", final, n, err)
		}
		return "", n, false, fmt.Errorf("GET %s: writing after %d bytes: %w", final, n, err)
	}
	if n > maxBytes {
		return "", n, false, fmt.Errorf("GET %s: body exceeds the limit of %d bytes: %w", final, maxBytes, ErrTooLarge)
	}
	// n > wantSize is left to the caller's size check.
	return hex.EncodeToString(h.Sum(nil)), n, false, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
