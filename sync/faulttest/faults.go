// Package faulttest makes an OCI registry misbehave for fault tests, and
// holds the fault tests that need the whole tool as a process (killed with
// SIGKILL mid-sync and mid-import, then run again).
//
// [RegistryFaults] is middleware for testregistry.WithMiddleware: it fails
// chosen write requests with 500, stops the registry or runs an action
// (such as killing the tool) at a chosen moment of a run, and records
// every blob the registry stored, so a test can prove that a rerun uploads
// nothing twice.
package faulttest

import (
	"net/http"
	"slices"
	"strings"
	"sync"
)

// Progress is what a registry had seen when a write request arrived.
type Progress struct {
	// Stored is how many blobs the registry has stored so far.
	Stored int
	// TagPuts is how many version-tag manifest PUTs have arrived, this one
	// included (digest PUTs and regclient's sha256-<hex> referrers
	// fallback tags do not count).
	TagPuts int
	// IsTag says this request is a version-tag PUT.
	IsTag bool
}

// RegistryFaults watches a registry's write requests: blob-upload PUTs
// (which complete an upload) and manifest PUTs. The zero value only
// watches. It is safe for concurrent use.
type RegistryFaults struct {
	mu                           sync.Mutex
	failBlobPut, failManifestPut []int
	blobPuts, manifestPuts       int
	failed                       int
	tagPuts                      int
	stored                       []string
	tagged                       []string

	cond   func(Progress) bool
	action func()
	cutOff bool
	fired  bool
}

// FailBlobPut makes the blob-upload PUTs with these 1-based numbers
// (counted since the last Reset) answer 500 without reaching the registry.
func (f *RegistryFaults) FailBlobPut(n ...int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failBlobPut = append(f.failBlobPut, n...)
}

// FailManifestPut makes the manifest PUTs with these 1-based numbers
// answer 500 without reaching the registry.
func (f *RegistryFaults) FailManifestPut(n ...int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failManifestPut = append(f.failManifestPut, n...)
}

// StopWhen runs stop (e.g. testregistry's Registry.Stop) in the
// background the first time cond holds as a write arrives, and from then
// on cuts off every request (this one included) before the registry sees
// it, as a registry that dies would. Reset lets requests through again.
func (f *RegistryFaults) StopWhen(cond func(Progress) bool, stop func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cond, f.action, f.cutOff, f.fired = cond, func() { go stop() }, true, false
}

// Trigger runs action once, synchronously, the first time cond holds as a
// write arrives; the request then goes on to the registry. Use it to kill
// the tool at a known point: the registry waits for action to return.
func (f *RegistryFaults) Trigger(cond func(Progress) bool, action func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cond, f.action, f.cutOff, f.fired = cond, action, false, false
}

// Middleware wraps a registry handler; pass it to testregistry.WithMiddleware.
func (f *RegistryFaults) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		isUpload := r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/")
		isManifest := r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/")
		ref := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		isTag := isManifest && !strings.HasPrefix(ref, "sha256")

		f.mu.Lock()
		fail := false
		switch {
		case isUpload:
			f.blobPuts++
			fail = slices.Contains(f.failBlobPut, f.blobPuts)
		case isManifest:
			f.manifestPuts++
			fail = slices.Contains(f.failManifestPut, f.manifestPuts)
		}
		if isTag {
			f.tagPuts++
		}
		if fail {
			f.failed++
		}
		var action func()
		if !f.fired && f.cond != nil && (isUpload || isTag) && f.cond(Progress{Stored: len(f.stored), TagPuts: f.tagPuts, IsTag: isTag}) {
			f.fired, action = true, f.action
		}
		cut := f.fired && f.cutOff
		f.mu.Unlock()

		if action != nil {
			action()
		}
		switch {
		case cut:
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				_ = conn.Close()
			}
			return
		case fail:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"errors":[{"code":"UNKNOWN","message":"injected failure"}]}`))
			return
		}
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status != http.StatusCreated {
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		switch {
		case isUpload:
			repo := strings.TrimPrefix(r.URL.Path[:strings.Index(r.URL.Path, "/blobs/uploads/")], "/v2/")
			f.stored = append(f.stored, repo+"@"+r.URL.Query().Get("digest"))
		case isTag:
			f.tagged = append(f.tagged, ref)
		}
	})
}

// Stored returns "repository@digest" for each blob the registry stored, in
// order. The same blob in two repositories is two uploads.
func (f *RegistryFaults) Stored() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.stored)
}

// Tagged returns the version tags the registry stored, in order.
func (f *RegistryFaults) Tagged() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.tagged)
}

// Failed returns how many requests FailBlobPut and FailManifestPut failed.
func (f *RegistryFaults) Failed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

// Reset forgets everything seen and every fault set up: the registry
// behaves again (restart it first if StopWhen stopped it).
func (f *RegistryFaults) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failBlobPut, f.failManifestPut, f.stored, f.tagged = nil, nil, nil, nil
	f.blobPuts, f.manifestPuts, f.failed, f.tagPuts = 0, 0, 0, 0
	f.cond, f.action, f.cutOff, f.fired = nil, nil, false, false
}

// StoredAgain returns the entries of f.Stored() that earlier (an earlier
// Stored) also holds: blobs uploaded to a repository a second time.
func (f *RegistryFaults) StoredAgain(earlier []string) []string {
	var again []string
	for _, d := range f.Stored() {
		if slices.Contains(earlier, d) {
			again = append(again, d)
		}
	}
	return again
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
