package upstream

import (
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// Service ids of OpenTofu's registry protocols.
const (
	ProvidersService = "providers.v1"
	ModulesService   = "modules.v1"
)

type discoDoc struct {
	// final is the discovery URL after redirects: relative services resolve
	// against it.
	final *url.URL
	// services is nil when the host answered 404 (it offers none).
	services map[string]json.RawMessage
}

// Discover returns the absolute base URL of service (e.g. "providers.v1") on
// host, always ending in "/". Hosts given to WithHostServices are answered
// from there; others by GET https://HOST/.well-known/terraform.json, cached
// per host for the life of the Client (failures are not cached).
func (c *Client) Discover(ctx context.Context, host, service string) (*url.URL, error) {
	host = normalizeHost(host)
	if host == "" || strings.ContainsAny(host, "/?#@ ") {
		return nil, fmt.Errorf("discovering %s: invalid hostname %q", service, host)
	}
	if svcs, ok := c.opts.hostServices[host]; ok {
		raw, ok := svcs[service]
		if !ok {
			return nil, fmt.Errorf("host %s (services configured) does not offer %s: %w", host, service, ErrNoService)
		}
		u, _ := url.Parse(raw) // checked in New
		return withTrailingSlash(u), nil
	}
	doc, err := c.discoveryDoc(ctx, host)
	if err != nil {
		return nil, err
	}
	if doc.services == nil {
		return nil, fmt.Errorf("host %s offers no services (discovery answered 404), so not %s: %w", host, service, ErrNoService)
	}
	raw, ok := doc.services[service]
	if !ok {
		return nil, fmt.Errorf("host %s does not offer %s: %w", host, service, ErrNoService)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("discovery document of %s: %s is not a string: %w", host, service, ErrProtocol)
	}
	ref, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("discovery document of %s: %s: invalid URL %q: %w", host, service, s, ErrProtocol)
	}
	u := doc.final.ResolveReference(ref)
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("discovery document of %s: %s: URL %s is not http(s): %w", host, service, redactURL(u), ErrProtocol)
	}
	return withTrailingSlash(u), nil
}

// withTrailingSlash returns a copy of u whose path ends in "/", so that
// relative references resolve below it rather than beside it.
func withTrailingSlash(u *url.URL) *url.URL {
	r := *u
	r.User = u.User
	if !strings.HasSuffix(r.Path, "/") {
		r.Path += "/"
		if r.RawPath != "" {
			r.RawPath += "/"
		}
	}
	return &r
}

func (c *Client) discoveryDoc(ctx context.Context, host string) (*discoDoc, error) {
	doc, err := c.disco.Get(ctx, host, func() (*discoDoc, error) { return c.fetchDiscovery(ctx, host) })
	if err != nil && ctx.Err() != nil && !strings.Contains(err.Error(), host) {
		return nil, fmt.Errorf("discovering services of %s: %w", host, err)
	}
	return doc, err
}

func (c *Client) fetchDiscovery(ctx context.Context, host string) (*discoDoc, error) {
	u := &url.URL{Scheme: "https", Host: host, Path: "/.well-known/terraform.json"}
	resp, err := c.apiGet(ctx, host, u)
	if err != nil {
		return nil, fmt.Errorf("discovering services of %s: %w", host, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return &discoDoc{final: resp.Request.URL}, nil
	default:
		return nil, fmt.Errorf("discovering services of %s: %w", host, statusError(resp))
	}
	// OpenTofu refuses other media types; so do we, to fail the same way.
	ct := resp.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
		return nil, fmt.Errorf("discovering services of %s: GET %s: Content-Type %q is not application/json: %w",
			host, redactURL(resp.Request.URL), ct, ErrProtocol)
	}
	var services map[string]json.RawMessage
	if err := decodeJSON(resp, &services); err != nil {
		return nil, fmt.Errorf("discovering services of %s: %w", host, err)
	}
	if services == nil {
		services = map[string]json.RawMessage{}
	}
	return &discoDoc{final: resp.Request.URL, services: services}, nil
}

// endpoint resolves path segments, each escaped, below base (which ends in
// "/"). Empty, "." and ".." segments are refused: they would climb out.
func endpoint(base *url.URL, segments ...string) (*url.URL, error) {
	esc := make([]string, len(segments))
	for i, s := range segments {
		if s == "" || s == "." || s == ".." {
			return nil, fmt.Errorf("invalid path segment %q in %v", s, segments)
		}
		esc[i] = url.PathEscape(s)
	}
	ref, err := url.Parse("./" + strings.Join(esc, "/"))
	if err != nil {
		return nil, fmt.Errorf("building endpoint from %v: %w", segments, err)
	}
	return base.ResolveReference(ref), nil
}

// apiCall discovers service on host and GETs the endpoint made of segments
// below it, with host's token. It returns the endpoint too; the caller
// closes the body.
func (c *Client) apiCall(ctx context.Context, host, service string, segments ...string) (*http.Response, *url.URL, error) {
	base, err := c.Discover(ctx, host, service)
	if err != nil {
		return nil, nil, err
	}
	u, err := endpoint(base, segments...)
	if err != nil {
		return nil, nil, err
	}
	resp, err := c.apiGet(ctx, host, u)
	if err != nil {
		return nil, nil, err
	}
	return resp, u, nil
}
