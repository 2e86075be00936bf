package upstream

import (
	"context"
	"encoding/json"
	"fmt"
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
			Location string `json:"location"`
		}
		if err := json.Unmarshal(data, &body); err != nil {
			return "", fmt.Errorf("%s: GET %s: decoding JSON: %v: %w", what, redactURL(resp.Request.URL), err, ErrProtocol)
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
