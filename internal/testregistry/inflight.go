package testregistry

import (
	"net/http"
	"strings"
	"sync"
	"time"
)

// UploadsInFlight is a middleware (for WithMiddleware) measuring how many
// blob uploads carrying content (the PUTs under /blobs/uploads/) run at
// once. Each is held for Hold before the registry serves it, so uploads
// started together overlap; PUTs with fewer than MinSize body bytes (an
// empty config blob) are not counted.
type UploadsInFlight struct {
	Hold    time.Duration
	MinSize int64

	mu       sync.Mutex
	now, max int
}

// Max is the most uploads seen in flight at once.
func (f *UploadsInFlight) Max() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.max
}

// Middleware wraps the registry's handler.
func (f *UploadsInFlight) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut || !strings.Contains(r.URL.Path, "/blobs/uploads/") || r.ContentLength < f.MinSize {
			next.ServeHTTP(w, r)
			return
		}
		f.mu.Lock()
		f.now++
		f.max = max(f.max, f.now)
		f.mu.Unlock()
		time.Sleep(f.Hold)
		next.ServeHTTP(w, r)
		f.mu.Lock()
		f.now--
		f.mu.Unlock()
	})
}
