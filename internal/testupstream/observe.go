package testupstream

import (
	"slices"
	"strings"
)

// UpstreamCounts is a snapshot of the requests a Server received, by
// endpoint. Every request counts on arrival, including ones answered by
// FailNext, a missing token or a 404.
type UpstreamCounts struct {
	// Discovery is GET /.well-known/terraform.json.
	Discovery int
	// Versions is the provider versions endpoint.
	Versions int
	// Download is the provider download API endpoint (the JSON), not the zip.
	Download int
	// Zip, SHASums and Signature are downloads of provider zips, SHA256SUMS
	// files and their .sig files.
	Zip, SHASums, Signature int
	// ModuleVersions and ModuleDownload are the module registry endpoints.
	ModuleVersions, ModuleDownload int
	// Archive is paths registered with ServeArchive.
	Archive int
	// Other is anything else (unknown paths).
	Other int
	// Total is the sum of all of the above.
	Total int
}

// RecordedRequest is one request as the Server saw it.
type RecordedRequest struct {
	// Method is the HTTP method.
	Method string
	// Path is the URL path, RawQuery the query without '?'.
	Path, RawQuery string
	// Authorization is the header's value; empty when absent.
	Authorization string
}

type requestKind int

const (
	kindOther requestKind = iota
	kindDiscovery
	kindVersions
	kindDownload
	kindZip
	kindSHASums
	kindSignature
	kindModuleVersions
	kindModuleDownload
	kindArchive
)

// classify maps the ServeMux pattern a request matched (and for files, the
// file name) to what it counts as.
func classify(pattern, path string) requestKind {
	switch {
	case strings.HasSuffix(pattern, "/.well-known/terraform.json"):
		return kindDiscovery
	case strings.HasPrefix(pattern, "GET /v1/providers/") && strings.HasSuffix(pattern, "/versions"):
		return kindVersions
	case strings.HasPrefix(pattern, "GET /v1/providers/"):
		return kindDownload
	case strings.HasPrefix(pattern, "GET /v1/modules/") && strings.HasSuffix(pattern, "/versions"):
		return kindModuleVersions
	case strings.HasPrefix(pattern, "GET /v1/modules/"):
		return kindModuleDownload
	case strings.HasPrefix(pattern, "GET /files/"):
		switch {
		case strings.HasSuffix(path, ".zip"):
			return kindZip
		case strings.HasSuffix(path, "_SHA256SUMS"):
			return kindSHASums
		case strings.HasSuffix(path, "_SHA256SUMS.sig"):
			return kindSignature
		}
	}
	return kindOther
}

func (c *UpstreamCounts) add(k requestKind) {
	c.Total++
	switch k {
	case kindDiscovery:
		c.Discovery++
	case kindVersions:
		c.Versions++
	case kindDownload:
		c.Download++
	case kindZip:
		c.Zip++
	case kindSHASums:
		c.SHASums++
	case kindSignature:
		c.Signature++
	case kindModuleVersions:
		c.ModuleVersions++
	case kindModuleDownload:
		c.ModuleDownload++
	case kindArchive:
		c.Archive++
	default:
		c.Other++
	}
}

// Counts returns a snapshot of the requests received since New or the last
// ResetCounts.
func (s *Server) Counts() UpstreamCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts
}

// ResetCounts zeroes the counts and forgets recorded requests.
func (s *Server) ResetCounts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts = UpstreamCounts{}
	s.requests = nil
}

// Requests returns every request received since New or the last
// ResetCounts, in arrival order.
func (s *Server) Requests() []RecordedRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

type fault struct {
	prefix     string
	remaining  int
	status     int
	retryAfter string
	misbehave  Misbehavior // nil: answer status
}

// FailNext makes the next n requests whose URL path starts with pathPrefix
// answer status, with a Retry-After header when retryAfter is not empty.
// Faults queue: an earlier FailNext or MisbehaveNext on an overlapping
// prefix is used up first.
func (s *Server) FailNext(pathPrefix string, n int, status int, retryAfter string) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{prefix: pathPrefix, remaining: n, status: status, retryAfter: retryAfter})
}

// takeFault consumes one use of the first fault matching path. s.mu is held.
func (s *Server) takeFault(path string) *fault {
	for i, f := range s.faults {
		if !strings.HasPrefix(path, f.prefix) {
			continue
		}
		f.remaining--
		if f.remaining <= 0 {
			s.faults = slices.Delete(s.faults, i, i+1)
		}
		return f
	}
	return nil
}

// ClearFaults drops every fault FailNext and MisbehaveNext queued and
// has not used yet: the link recovers.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// Stop shuts the server down now, as an upstream out of reach: requests
// after it fail to connect. The cleanup New registered still runs.
func (s *Server) Stop() { s.srv.Close() }
