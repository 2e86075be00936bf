package testupstream

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// ModuleDownloadStyle is how a module download endpoint hands out the source
// address.
type ModuleDownloadStyle int

const (
	// ModuleDownloadJSON answers 200 with {"location": "..."}, as
	// registry.opentofu.org does.
	ModuleDownloadJSON ModuleDownloadStyle = iota
	// ModuleDownloadHeader answers 204 with an X-Terraform-Get header.
	ModuleDownloadHeader
)

type module struct {
	versions map[string]string // version as given -> location
	style    *ModuleDownloadStyle
	// direct holds, per version, use_registry_credentials of an OpenTofu
	// 1.12 direct download (AddModuleDirect).
	direct map[string]bool
}

func moduleKey(namespace, name, system string) string {
	return strings.ToLower(namespace + "/" + name + "/" + system)
}

// AddModule registers a module version whose download endpoint returns
// location verbatim (relative locations like "./x.zip" or "/archives/x.zip"
// are for the client to resolve against the download URL). The version is
// listed as given, so a "v" prefix can be tested.
func (s *Server) AddModule(namespace, name, system, version, location string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := moduleKey(namespace, name, system)
	m := s.modules[k]
	if m == nil {
		m = &module{versions: map[string]string{}}
		s.modules[k] = m
	}
	m.versions[version] = location
}

// AddModuleDirect registers a module version whose download endpoint
// answers 200 with {"location": location, "use_registry_credentials":
// useCredentials}: OpenTofu 1.12's direct download of a package the
// registry hosts (location may be relative to the endpoint's URL).
func (s *Server) AddModuleDirect(namespace, name, system, version, location string, useCredentials bool) {
	s.AddModule(namespace, name, system, version, location)
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.modules[moduleKey(namespace, name, system)]
	if m.direct == nil {
		m.direct = map[string]bool{}
	}
	m.direct[version] = useCredentials
}

// RequireToken makes GETs of URL+path answer 401 unless they carry
// "Authorization: Bearer token", as a registry hosting its own packages may.
func (s *Server) RequireToken(path, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bearer[path] = token
}

// SetModuleDownloadStyle overrides the server's WithModuleDownloadStyle for
// one module, which must have been added.
func (s *Server) SetModuleDownloadStyle(namespace, name, system string, style ModuleDownloadStyle) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.modules[moduleKey(namespace, name, system)]
	if m == nil {
		s.t.Fatalf("testupstream: no module %s/%s/%s", namespace, name, system)
	}
	m.style = &style
}

// ServeArchive serves data at URL+path (path starts with "/"; the query is
// ignored when matching), e.g. a module package a location points at.
// It takes precedence over every other route.
func (s *Server) ServeArchive(path string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.archives[path] = slices.Clone(data)
}

// ServeTerraformGet answers GETs of URL+path (query ignored) with 204 and
// "X-Terraform-Get: source", as a package URL naming no archive format
// may, for go-getter's HTTP getter. Like ServeArchive it takes precedence
// over every other route.
func (s *Server) ServeTerraformGet(path, source string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.archives[path] = nil
	s.terraformGet[path] = source
}

// RequireBasicAuth makes GETs of URL+path answer 401 unless they carry
// HTTP basic authentication as user and password (what a .netrc gives).
func (s *Server) RequireBasicAuth(path, user, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.basicAuth[path] = [2]string{user, password}
}

type moduleVersionsResponse struct {
	Modules []moduleVersions `json:"modules"`
}

type moduleVersions struct {
	Versions []moduleVersion `json:"versions"`
}

type moduleVersion struct {
	Version string `json:"version"`
}

func (s *Server) handleModuleVersions(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	m := s.modules[moduleKey(r.PathValue("namespace"), r.PathValue("name"), r.PathValue("system"))]
	var list []moduleVersion
	if m != nil {
		for v := range m.versions {
			list = append(list, moduleVersion{Version: v})
		}
	}
	s.mu.Unlock()
	if m == nil {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	slices.SortFunc(list, func(a, b moduleVersion) int { return strings.Compare(a.Version, b.Version) })
	writeJSON(w, http.StatusOK, moduleVersionsResponse{Modules: []moduleVersions{{Versions: list}}})
}

func (s *Server) handleModuleDownload(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	m := s.modules[moduleKey(r.PathValue("namespace"), r.PathValue("name"), r.PathValue("system"))]
	var location string
	found := false
	style := s.opts.moduleStyle
	var direct, useCreds bool
	if m != nil {
		location, found = m.versions[r.PathValue("version")]
		if m.style != nil {
			style = *m.style
		}
		useCreds, direct = m.direct[r.PathValue("version")]
	}
	s.mu.Unlock()
	if !found {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	if direct {
		writeJSON(w, http.StatusOK, map[string]any{"location": location, "use_registry_credentials": useCreds})
		return
	}
	if style == ModuleDownloadHeader {
		w.Header().Set("X-Terraform-Get", location)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"location": location})
}

func (s *Server) handleArchive(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	data := s.archives[r.URL.Path]
	source, redirect := s.terraformGet[r.URL.Path]
	want, locked := s.basicAuth[r.URL.Path]
	token, needsToken := s.bearer[r.URL.Path]
	s.mu.Unlock()
	if needsToken && r.Header.Get("Authorization") != "Bearer "+token {
		writeError(w, http.StatusUnauthorized, "Unauthorized")
		return
	}
	if locked {
		if u, p, ok := r.BasicAuth(); !ok || u != want[0] || p != want[1] {
			w.Header().Set("WWW-Authenticate", `Basic realm="modules"`)
			writeError(w, http.StatusUnauthorized, "Unauthorized")
			return
		}
	}
	if redirect {
		w.Header().Set("X-Terraform-Get", source)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	_, _ = w.Write(data)
}
