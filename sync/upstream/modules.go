package upstream

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
)

// moduleName is "HOST/NAMESPACE/NAME/SYSTEM" for messages.
func moduleName(a config.ModuleAddr) string {
	return hostOrDefault(a.Hostname) + "/" + a.Namespace + "/" + a.Name + "/" + a.System
}

// ModuleVersions lists the versions of module a from the registry's first
// (and only meaningful) module entry, in the registry's order, with a
// leading "v" stripped. A module the registry does not know, or an answer
// without modules, gives an error wrapping ErrNotFound.
func (c *Client) ModuleVersions(ctx context.Context, a config.ModuleAddr) ([]string, error) {
	host := hostOrDefault(a.Hostname)
	name := moduleName(a)
	resp, _, err := c.apiCall(ctx, host, ModulesService, a.Namespace, a.Name, a.System, "versions")
	if err != nil {
		return nil, fmt.Errorf("module %s: listing versions: %w", name, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, fmt.Errorf("module %s: registry does not know it (404 from %s): %w", name, redactURL(resp.Request.URL), ErrNotFound)
	default:
		return nil, fmt.Errorf("module %s: listing versions: %w", name, statusError(resp))
	}
	var body struct {
		Modules []struct {
			Versions []struct {
				Version string `json:"version"`
			} `json:"versions"`
		} `json:"modules"`
	}
	if err := decodeJSON(resp, &body); err != nil {
		return nil, fmt.Errorf("module %s: listing versions: %w", name, err)
	}
	if len(body.Modules) == 0 {
		return nil, fmt.Errorf("module %s: registry answered without modules: %w", name, ErrNotFound)
	}
	out := make([]string, 0, len(body.Modules[0].Versions))
	for i, v := range body.Modules[0].Versions {
		s := strings.TrimPrefix(v.Version, "v")
		if s == "" {
			return nil, fmt.Errorf("module %s: versions[%d] has no version: %w", name, i, ErrProtocol)
		}
		out = append(out, s)
	}
	return out, nil
}

// ModuleLocation returns the source address of module a at version: from a
// 204 answer's X-Terraform-Get header, or a 200 answer's JSON "location"
// (an empty one falls back to the header). As in OpenTofu, a location
// starting with "/", "./" or "../" is resolved against the download
// endpoint's URL; anything else (e.g. "git::https://...?ref=...") is
// returned verbatim. A 404 gives an error wrapping ErrNotFound.
//
// A 200 answer with "use_registry_credentials" (true or false; OpenTofu
// 1.12's direct downloads) makes the location the registry's own package
// URL, relative ones resolved against the endpoint's URL: it is returned
// as DirectLocation makes it, naming a's host as the credentials host only
// when the field is true, as OpenTofu sends the registry token only then.
func (c *Client) ModuleLocation(ctx context.Context, a config.ModuleAddr, version string) (string, error) {
	host := hostOrDefault(a.Hostname)
	what := fmt.Sprintf("module %s %s", moduleName(a), version)
	resp, download, err := c.apiCall(ctx, host, ModulesService, a.Namespace, a.Name, a.System, version, "download")
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	var location string
	switch resp.StatusCode {
	case http.StatusOK:
		data, err := readSmall(resp, MaxJSONSize)
		if err != nil {
			return "", fmt.Errorf("%s: %w", what, err)
		}
		var body struct {
			Location               string          `json:"location"`
			UseRegistryCredentials json.RawMessage `json:"use_registry_credentials"`
		}
		if err := json.Unmarshal(data, &body); err != nil {
			return "", fmt.Errorf("%s: GET %s: decoding JSON: %v: %w", what, redactURL(resp.Request.URL), err, ErrProtocol)
		}
		if len(body.UseRegistryCredentials) > 0 && string(body.UseRegistryCredentials) != "null" {
			return directLocation(what, host, body.Location, string(body.UseRegistryCredentials), download)
		}
		location = body.Location
		if location == "" {
			location = resp.Header.Get("X-Terraform-Get")
		}
	case http.StatusNoContent:
		location = resp.Header.Get("X-Terraform-Get")
	case http.StatusNotFound:
		return "", fmt.Errorf("%s: registry answered 404: %w", what, ErrNotFound)
	default:
		return "", fmt.Errorf("%s: %w", what, statusError(resp))
	}
	if location == "" {
		return "", fmt.Errorf("%s: GET %s answered %s without a location: %w", what, redactURL(resp.Request.URL), resp.Status, ErrProtocol)
	}
	if strings.HasPrefix(location, "/") || strings.HasPrefix(location, "./") || strings.HasPrefix(location, "../") {
		ref, err := url.Parse(location)
		if err != nil {
			return "", fmt.Errorf("%s: relative location %q is not a URL: %w", what, location, ErrProtocol)
		}
		location = download.ResolveReference(ref).String()
	}
	return location, nil
}

// DirectLocationPrefix starts the locations ModuleLocation returns for
// direct downloads; modsource fetches them.
const DirectLocationPrefix = "direct::"

// DirectCredentialsFragment starts the URL fragment naming the registry
// host whose token goes with a direct download. OpenTofu refuses direct
// URLs with a fragment, so it cannot clash with a real one, and fragments
// are never sent over HTTP.
const DirectCredentialsFragment = "registry-credentials="

// DirectLocation renders a direct download of packageURL (absolute http(s),
// no fragment): "direct::URL", plus "#registry-credentials=HOST" when the
// registry token of credentialsHost is to be sent.
func DirectLocation(packageURL, credentialsHost string) string {
	s := DirectLocationPrefix + packageURL
	if credentialsHost != "" {
		s += "#" + DirectCredentialsFragment + credentialsHost
	}
	return s
}

// directLocation checks a use_registry_credentials answer as OpenTofu's
// preparePackageLocationDirect does.
func directLocation(what, host, location, useCreds string, download *url.URL) (string, error) {
	var creds bool
	switch useCreds {
	case "true":
		creds = true
	case "false":
	default:
		return "", fmt.Errorf("%s: use_registry_credentials is %s, want true or false: %w", what, useCreds, ErrProtocol)
	}
	if location == "" {
		return "", fmt.Errorf("%s: direct download without a location: %w", what, ErrProtocol)
	}
	u, err := url.Parse(location)
	if err != nil {
		return "", fmt.Errorf("%s: direct download location %q is not a URL: %w", what, location, ErrProtocol)
	}
	if !u.IsAbs() {
		u = download.ResolveReference(u)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%s: direct download location %s must be an http or https URL: %w", what, redactURL(u), ErrProtocol)
	case u.Fragment != "":
		return "", fmt.Errorf("%s: direct download location %s must not have a fragment: %w", what, redactURL(u), ErrProtocol)
	}
	credsHost := ""
	if creds {
		credsHost = host
	}
	return DirectLocation(u.String(), credsHost), nil
}

// TerraformGet asks rawURL for the source address of a module package, as
// go-getter's HTTP getter does for URLs that name no archive format: a GET
// (no registry token; GitHub's token to GitHub only) that must answer 2xx,
// returning its X-Terraform-Get header and, when that is empty, at most
// maxBody bytes of the body for a terraform-get meta tag.
func (c *Client) TerraformGet(ctx context.Context, rawURL string, maxBody int64) (string, []byte, error) {
	u, err := parseHTTPURL(rawURL)
	if err != nil {
		return "", nil, fmt.Errorf("asking for X-Terraform-Get: %w", err)
	}
	token := ""
	if c.opts.githubToken != "" && u.Scheme == "https" && isGitHubHost(u.Host) {
		token = c.opts.githubToken
	}
	resp, err := c.get(ctx, c.dl, u, token, "", gitHubHosts...)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", nil, statusError(resp)
	}
	if h := resp.Header.Get("X-Terraform-Get"); h != "" {
		return h, nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return "", nil, fmt.Errorf("GET %s: reading body: %w", redactURL(resp.Request.URL), err)
	}
	return "", body, nil
}

// FetchWithRegistryCredentials downloads rawURL into w, at most maxBytes,
// sending host's registry token (as for API calls) to rawURL's host only:
// OpenTofu 1.12's direct download with "use_registry_credentials": true.
func (c *Client) FetchWithRegistryCredentials(ctx context.Context, host, rawURL string, w io.Writer, maxBytes int64) (int64, error) {
	u, err := parseHTTPURL(rawURL)
	if err != nil {
		return 0, fmt.Errorf("fetching: %w", err)
	}
	if maxBytes <= 0 {
		maxBytes = c.opts.maxPackageSize
	}
	_, n, err := c.stream(ctx, u, c.opts.tokens(hostOrDefault(host)), w, maxBytes, -1)
	if err != nil {
		return n, fmt.Errorf("fetching %s with the credentials of %s: %w", redactURL(u), host, err)
	}
	return n, nil
}
