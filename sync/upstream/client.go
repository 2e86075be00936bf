// Package upstream speaks OpenTofu's registry protocols (service discovery,
// the provider registry and the module registry) to registry.opentofu.org or
// any compatible host, downloads provider packages and module archives as
// streams, and verifies provider packages the way OpenTofu does: signed
// SHA256SUMS, matching checksum line, matching package hash.
//
// Credentials: a registry token (from WithTokens) goes only on
// discovery and registry API requests of that host's services, never on
// package, SHA256SUMS, signature or archive downloads, and never across a
// redirect to another host. A GitHub token goes only to github.com,
// api.github.com and codeload.github.com. Neither is logged nor put into an
// error.
package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/sched"

	"github.com/hashicorp/go-retryablehttp"
)

// Defaults of the options.
const (
	// DefaultUserAgent is sent when WithUserAgent is not given.
	DefaultUserAgent = "tofu-oci-mirror/dev"
	// DefaultRetryMax is how often a failed request is retried.
	DefaultRetryMax = 5
	// DefaultRetryMinWait is the first backoff between attempts.
	DefaultRetryMinWait = 500 * time.Millisecond
	// DefaultRetryMaxWait caps the exponential backoff.
	DefaultRetryMaxWait = 30 * time.Second
	// DefaultTimeout bounds each attempt of an API request.
	DefaultTimeout = 60 * time.Second
	// DefaultStallTimeout aborts a download that receives nothing this long.
	DefaultStallTimeout = 2 * time.Minute
	// DefaultMaxPackageSize caps a provider package or module archive (8 GiB).
	DefaultMaxPackageSize = 8 << 30
	// DefaultMaxRetryAfter caps how long a Retry-After header may make us
	// wait; the caller's context bounds it further.
	DefaultMaxRetryAfter = 5 * time.Minute
	// MaxJSONSize caps registry API answers, discovery documents,
	// SHA256SUMS files and signatures (16 MiB).
	MaxJSONSize = 16 << 20
)

const maxRedirects = 10

type options struct {
	caFile         string
	hostServices   map[string]map[string]string
	logger         *slog.Logger
	userAgent      string
	retryMax       int
	retryMinWait   time.Duration
	retryMaxWait   time.Duration
	maxRetryAfter  time.Duration
	timeout        time.Duration
	stallTimeout   time.Duration
	tokens         func(host string) string
	httpClient     *http.Client
	maxPackageSize int64
	githubToken    string
	signatures     SignaturePolicy
	releaseCheck   ReleaseCheck
}

// Option configures a Client in New.
type Option func(*options)

// WithCAFile adds the PEM certificates in path to the system roots (Go
// already honours SSL_CERT_FILE and SSL_CERT_DIR for the system roots).
func WithCAFile(path string) Option { return func(o *options) { o.caFile = path } }

// WithHostServices skips service discovery for the listed hosts, as
// OpenTofu's CLI config `host "name" { services = {...} }` does: hostname ->
// service id ("providers.v1", "modules.v1") -> absolute http(s) base URL. A
// listed host offers only the services listed for it.
func WithHostServices(hosts map[string]map[string]string) Option {
	return func(o *options) { o.hostServices = hosts }
}

// WithLogger sets the logger for requests (debug) and retries (warn). A nil
// logger discards.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithUserAgent sets the User-Agent of every request (default
// DefaultUserAgent).
func WithUserAgent(ua string) Option { return func(o *options) { o.userAgent = ua } }

// WithRetry sets how often a request is retried after a connection error, a
// 429 or a 5xx other than 501 (max, default 5; 0 disables retries), and the
// bounds of the jittered exponential backoff between attempts (default
// 500ms..30s). A Retry-After header overrides the backoff, up to
// WithMaxRetryAfter.
func WithRetry(max int, minWait, maxWait time.Duration) Option {
	return func(o *options) { o.retryMax, o.retryMinWait, o.retryMaxWait = max, minWait, maxWait }
}

// WithMaxRetryAfter caps how long a Retry-After header may make a retry wait
// (default DefaultMaxRetryAfter).
func WithMaxRetryAfter(d time.Duration) Option { return func(o *options) { o.maxRetryAfter = d } }

// WithTimeout bounds each attempt of a registry API request, discovery and
// the SHA256SUMS and signature downloads (default 60s). Package and archive
// downloads have no total timeout; WithStallTimeout bounds them instead.
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithStallTimeout aborts (and, where possible, retries) a package or archive
// download that receives no data for d (default 2 minutes).
func WithStallTimeout(d time.Duration) Option { return func(o *options) { o.stallTimeout = d } }

// WithTokens sets how the registry token of a host is found; host is
// lower-case hostname[:port]. An empty answer means none, and so does the
// default: the library reads no environment, the CLI finds tokens where
// OpenTofu does (TF_TOKEN_<host>, credentials blocks) and passes them here.
func WithTokens(lookup func(host string) string) Option {
	return func(o *options) { o.tokens = lookup }
}

// WithHTTPClient sets the base client: its Transport (nil means a clone of
// http.DefaultTransport), Jar and CheckRedirect are used; its Timeout is
// ignored in favour of WithTimeout and WithStallTimeout.
func WithHTTPClient(hc *http.Client) Option { return func(o *options) { o.httpClient = hc } }

// WithMaxPackageSize caps provider package downloads and the default cap of
// Fetch (default 8 GiB).
func WithMaxPackageSize(n int64) Option { return func(o *options) { o.maxPackageSize = n } }

// WithGitHubToken sets a token sent with Fetch requests to github.com,
// api.github.com and codeload.github.com only (GitHub rate-limits anonymous
// clients hard). Empty means none.
func WithGitHubToken(token string) Option { return func(o *options) { o.githubToken = token } }

// WithReleaseCheck sets who decides whether a release's SHA256SUMS is
// signed by a trusted key (pinned keys, providers allowed unsigned); by
// default the keys the registry serves are trusted, as OpenTofu does.
func WithReleaseCheck(f ReleaseCheck) Option { return func(o *options) { o.releaseCheck = f } }

// WithSignaturePolicy sets how strictly SHA256SUMS signatures are judged
// (default: OpenTofu's, see [SignaturePolicy]).
func WithSignaturePolicy(p SignaturePolicy) Option { return func(o *options) { o.signatures = p } }

// Client talks to OpenTofu registries. It is safe for concurrent use; the
// discovery cache is shared by all calls.
type Client struct {
	opts options
	log  *slog.Logger
	// api serves registry API calls, discovery, SHA256SUMS and signatures:
	// each attempt has a total timeout.
	api *retryablehttp.Client
	// dl serves package and archive downloads: no total timeout, a stall
	// timeout instead.
	dl *retryablehttp.Client

	signatures SignaturePolicy

	// disco holds each host's discovery document, fetched once and
	// shared by concurrent callers.
	disco sched.Memo[string, *discoDoc]
}

// New returns a Client configured by opts.
func New(opts ...Option) (*Client, error) {
	o := options{
		userAgent:      DefaultUserAgent,
		retryMax:       DefaultRetryMax,
		retryMinWait:   DefaultRetryMinWait,
		retryMaxWait:   DefaultRetryMaxWait,
		maxRetryAfter:  DefaultMaxRetryAfter,
		timeout:        DefaultTimeout,
		stallTimeout:   DefaultStallTimeout,
		maxPackageSize: DefaultMaxPackageSize,
	}
	for _, opt := range opts {
		opt(&o)
	}
	switch {
	case o.retryMax < 0:
		return nil, fmt.Errorf("upstream: retry count %d is negative", o.retryMax)
	case o.retryMinWait < 0 || o.retryMaxWait < o.retryMinWait:
		return nil, fmt.Errorf("upstream: retry waits %s..%s are not a range", o.retryMinWait, o.retryMaxWait)
	case o.timeout <= 0 || o.stallTimeout <= 0:
		return nil, fmt.Errorf("upstream: timeouts must be positive")
	case o.maxPackageSize <= 0:
		return nil, fmt.Errorf("upstream: maximum package size must be positive")
	}
	if o.userAgent == "" {
		o.userAgent = DefaultUserAgent
	}
	if o.tokens == nil {
		o.tokens = func(string) string { return "" }
	}
	services, err := normalizeHostServices(o.hostServices)
	if err != nil {
		return nil, err
	}
	o.hostServices = services

	base := o.httpClient
	if base == nil {
		base = &http.Client{}
	}
	transport := base.Transport
	if transport == nil {
		transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	if o.caFile != "" {
		transport, err = withExtraRoots(transport, o.caFile)
		if err != nil {
			return nil, err
		}
	}
	redirect := stripAuthOnRedirect(base.CheckRedirect)

	c := &Client{opts: o, log: o.logger, signatures: o.signatures}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	apiTransport, dlTransport := splitTransports(transport)
	c.api = c.retryClient(&http.Client{Transport: &bufferTransport{base: apiTransport, limit: MaxJSONSize}, Jar: base.Jar, CheckRedirect: redirect, Timeout: o.timeout})
	c.dl = c.retryClient(&http.Client{Transport: &stallTransport{base: dlTransport, idle: o.stallTimeout}, Jar: base.Jar, CheckRedirect: redirect})
	return c, nil
}

// idleConnsPerHost is how many idle connections each pool keeps per host
// (Go's default is 2): enough for every transfer and metadata call in
// flight to find its connection again instead of paying a TCP and TLS
// handshake, a round trip or two, per package.
const idleConnsPerHost = 64

// splitTransports returns the transports of the two pools, from the same
// base: one for API calls, which may multiplex over HTTP/2 (they are
// small, and many at once), and one for package downloads over HTTP/1.1,
// a connection each, because one HTTP/2 connection would carry every
// download at once and cap the whole run at one TCP connection's
// bandwidth, which over an internet link is far below the total (issue
// 15: 9x the network floor). A transport other than *http.Transport is
// used as it is for both.
func splitTransports(base http.RoundTripper) (api, dl http.RoundTripper) {
	t, ok := base.(*http.Transport)
	if !ok {
		return base, base
	}
	pool := func(h2 bool) *http.Transport {
		c := t.Clone()
		c.MaxIdleConnsPerHost = max(c.MaxIdleConnsPerHost, idleConnsPerHost)
		if c.MaxIdleConns > 0 {
			c.MaxIdleConns = max(c.MaxIdleConns, 4*idleConnsPerHost)
		}
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetHTTP2(h2)
		c.Protocols = &p
		if !h2 && c.TLSClientConfig != nil {
			// A transport that spoke HTTP/2 already offers it in ALPN:
			// a server choosing it would then hear HTTP/1.1.
			c.TLSClientConfig = c.TLSClientConfig.Clone()
			c.TLSClientConfig.NextProtos = slices.DeleteFunc(slices.Clone(c.TLSClientConfig.NextProtos), func(p string) bool { return p == "h2" })
		}
		return c
	}
	return pool(true), pool(false)
}

func normalizeHostServices(in map[string]map[string]string) (map[string]map[string]string, error) {
	out := make(map[string]map[string]string, len(in))
	for host, svcs := range in {
		m := make(map[string]string, len(svcs))
		for id, raw := range svcs {
			u, err := url.Parse(raw)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return nil, fmt.Errorf("upstream: service %s of host %s: %q is not an absolute http(s) URL", id, host, raw)
			}
			m[id] = raw
		}
		out[normalizeHost(host)] = m
	}
	return out, nil
}

// withExtraRoots returns a copy of transport whose TLS roots are the system
// roots plus the certificates in caFile.
func withExtraRoots(transport http.RoundTripper, caFile string) (http.RoundTripper, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("upstream: reading CA file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("upstream: CA file %s holds no PEM certificate", caFile)
	}
	t, ok := transport.(*http.Transport)
	if !ok {
		return nil, fmt.Errorf("upstream: WithCAFile needs an *http.Transport, the HTTP client has %T", transport)
	}
	t = t.Clone()
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	t.TLSClientConfig.RootCAs = pool
	return t, nil
}

// authScopeKey keys, in a request's context, the hosts its Authorization
// header may reach.
type authScopeKey struct{}

// stripAuthOnRedirect keeps Authorization only while a redirect goes to a
// host in the request's scope (by default the first request's host) without
// an https->http downgrade. Go alone would forward it to any subdomain.
func stripAuthOnRedirect(next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if len(via) >= maxRedirects {
			// Worded as net/http words it, so the retry policy sees it is final.
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
			return fmt.Errorf("%w: redirect to non-http(s) URL %s", ErrProtocol, redactURL(req.URL))
		}
		first := via[0].URL
		scope, _ := req.Context().Value(authScopeKey{}).([]string)
		if len(scope) == 0 {
			scope = []string{first.Host}
		}
		inScope := false
		for _, h := range scope {
			if normalizeHost(h) == normalizeHost(req.URL.Host) {
				inScope = true
			}
		}
		if !inScope || (first.Scheme == "https" && req.URL.Scheme != "https") {
			req.Header.Del("Authorization")
		}
		if next != nil {
			return next(req, via)
		}
		return nil
	}
}

func (c *Client) retryClient(hc *http.Client) *retryablehttp.Client {
	return &retryablehttp.Client{
		HTTPClient:     hc,
		Logger:         nil, // we log through RequestLogHook and slog instead
		RetryWaitMin:   c.opts.retryMinWait,
		RetryWaitMax:   c.opts.retryMaxWait,
		RetryMax:       c.opts.retryMax,
		CheckRetry:     checkRetry,
		Backoff:        c.backoff,
		ErrorHandler:   giveUp,
		RequestLogHook: c.logAttempt,
	}
}

// attemptKey keys the *attemptState of one logical request in its context,
// so the log hook can say why it retries.
type attemptKey struct{}

type attemptState struct{ reason string }

func checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if errors.Is(err, ErrProtocol) {
		// Our CheckRedirect refused the target (not http(s)): asking
		// again gets the same redirect.
		return false, nil
	}
	retry, perr := retryablehttp.DefaultRetryPolicy(ctx, resp, err)
	if st, ok := ctx.Value(attemptKey{}).(*attemptState); ok && retry {
		if err != nil {
			st.reason = stripURLError(err).Error()
		} else if resp != nil {
			st.reason = resp.Status
		}
	}
	return retry, perr
}

// backoff waits as the server asks (Retry-After, capped) or else
// exponentially from minWait, doubling per attempt up to maxWait, with the
// upper half jittered so parallel clients spread out.
func (c *Client) backoff(minWait, maxWait time.Duration, attempt int, resp *http.Response) time.Duration {
	if resp != nil {
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			return min(d, c.opts.maxRetryAfter)
		}
	}
	upper := minWait
	for i := 0; i < attempt && upper < maxWait; i++ {
		upper *= 2
	}
	upper = min(upper, maxWait)
	lo := max(minWait, upper/2)
	if upper <= lo {
		return lo
	}
	return lo + rand.N(upper-lo+1)
}

// parseRetryAfter reads delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(24*time.Hour/time.Second) {
			secs = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

func (c *Client) logAttempt(_ retryablehttp.Logger, req *http.Request, attempt int) {
	if attempt == 0 {
		c.log.Debug("upstream request", "method", req.Method, "url", redactURL(req.URL))
		return
	}
	reason := ""
	if st, ok := req.Context().Value(attemptKey{}).(*attemptState); ok {
		reason = st.reason
	}
	c.log.Warn("retrying upstream request", "method", req.Method, "url", redactURL(req.URL), "attempt", attempt+1, "reason", reason)
}

// giveUp is called when retries are exhausted or a failure is final. A last
// HTTP response is handed to the caller, which reports its status.
func giveUp(resp *http.Response, err error, tries int) (*http.Response, error) {
	if err == nil && resp != nil {
		return resp, nil
	}
	if resp != nil {
		resp.Body.Close()
	}
	if err == nil {
		err = errors.New("request failed")
	}
	err = stripURLError(err)
	if tries > 1 {
		return nil, fmt.Errorf("giving up after %d attempts: %w", tries, err)
	}
	return nil, err
}

// stripURLError drops net/http's *url.Error wrapper, whose message repeats the
// full URL; ours names the URL once, redacted.
func stripURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// get performs a GET with retries. token, when not empty, is sent as a
// Bearer token to u's host, and across redirects only to tokenHosts (nil: u's
// host). The caller closes the body.
func (c *Client) get(ctx context.Context, rc *retryablehttp.Client, u *url.URL, token, accept string, tokenHosts ...string) (*http.Response, error) {
	ctx = context.WithValue(ctx, attemptKey{}, &attemptState{})
	if len(tokenHosts) > 0 {
		ctx = context.WithValue(ctx, authScopeKey{}, tokenHosts)
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", redactURL(u), err)
	}
	req.Header.Set("User-Agent", c.opts.userAgent)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := rc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", redactURL(u), stripURLError(err))
	}
	return resp, nil
}

// apiGet is a registry API request to host's services, carrying host's token.
func (c *Client) apiGet(ctx context.Context, host string, u *url.URL) (*http.Response, error) {
	return c.get(ctx, c.api, u, c.opts.tokens(host), "application/json")
}

// statusError describes an unexpected final status without echoing the body
// (a hostile server could reflect our Authorization header into it).
func statusError(resp *http.Response) error {
	u := redactURL(resp.Request.URL)
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("GET %s: %s: %w (set TF_TOKEN_<host> for this registry)", u, resp.Status, ErrUnauthorized)
	}
	return fmt.Errorf("GET %s: %s: %w", u, resp.Status, ErrHTTPStatus)
}

// readSmall reads a body of at most limit bytes.
func readSmall(resp *http.Response, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: reading body: %w", redactURL(resp.Request.URL), err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("GET %s: body exceeds %d bytes: %w", redactURL(resp.Request.URL), limit, ErrTooLarge)
	}
	return data, nil
}

// decodeJSON reads a capped JSON body into v.
func decodeJSON(resp *http.Response, v any) error {
	data, err := readSmall(resp, MaxJSONSize)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("GET %s: decoding JSON: %v: %w", redactURL(resp.Request.URL), err, ErrProtocol)
	}
	return nil
}

// redactURL renders u for logs and errors: no user info, and the values of
// query parameters that look like credentials (presigned download URLs) are
// replaced.
func redactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	r := *u
	r.User = nil
	if r.RawQuery != "" {
		q := r.Query()
		changed := false
		for k := range q {
			lk := strings.ToLower(k)
			for _, s := range []string{"token", "sig", "key", "secret", "password", "credential", "auth", "x-amz-", "x-goog-"} {
				if strings.Contains(lk, s) {
					q[k] = []string{"REDACTED"}
					changed = true
					break
				}
			}
		}
		if changed {
			r.RawQuery = q.Encode()
		}
	}
	return r.String()
}

// normalizeHost lower-cases a hostname[:port] and drops a trailing dot.
func normalizeHost(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	if host, port, ok := strings.Cut(h, ":"); ok {
		return strings.TrimSuffix(host, ".") + ":" + port
	}
	return strings.TrimSuffix(h, ".")
}
