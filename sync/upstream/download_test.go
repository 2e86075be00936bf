package upstream

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// spoolFile is a temp file as callers pass it, already holding a prefix so
// tests see that retries rewind to where the file stood, not to zero.
func spoolFile(t *testing.T, prefix string) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "spool"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if _, err := f.WriteString(prefix); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestDownloadPackage(t *testing.T) {
	f := newProviderFixture(t, nil)
	c := f.client(t)
	pkg := f.pkg(t, c)
	spool := spoolFile(t, "")
	sum, n, err := c.DownloadPackage(t.Context(), pkg, spool)
	if err != nil {
		t.Fatal(err)
	}
	if sum != sha256hex(f.rel.zip) || n != int64(len(f.rel.zip)) {
		t.Errorf("got %s/%d, want %s/%d", sum, n, sha256hex(f.rel.zip), len(f.rel.zip))
	}
	if !bytes.Equal(readAllFrom(t, spool), f.rel.zip) {
		t.Error("spool does not hold the package")
	}
	// Tokens go to the registry API only, never to the package host.
	for _, s := range f.rec.all() {
		onAPI := s.Host == hostOf(f.api)
		if onAPI && s.Auth != "Bearer "+testToken {
			t.Errorf("API request %s lacks the token", s.Path)
		}
		if !onAPI && s.Auth != "" {
			t.Errorf("package host request %s carries Authorization", s.Path)
		}
		if s.UA != "upstream-test/1" {
			t.Errorf("%s: User-Agent %q", s.Path, s.UA)
		}
	}
	if f.rec.count("/files/") != 1 {
		t.Errorf("package fetched %d times, want 1", f.rec.count("/files/"))
	}
}

// Relative package URLs land on the API host, which redirects to the files
// host; none of it carries the token (downloads never do).
func TestDownloadPackageRelativeThroughRedirect(t *testing.T) {
	f := newProviderFixture(t, func(f *providerFixture) { f.relative = true })
	c := f.client(t)
	pkg := f.pkg(t, c)
	if want := f.api.URL + "/files-via-api/" + f.rel.filename; pkg.DownloadURL != want {
		t.Fatalf("DownloadURL = %s, want %s", pkg.DownloadURL, want)
	}
	if _, err := c.VerifyProvenance(t.Context(), pkg); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, _, err := c.DownloadPackage(t.Context(), pkg, &buf); err != nil {
		t.Fatal(err)
	}
	for _, s := range f.rec.all() {
		if strings.Contains(s.Path, "files") && s.Auth != "" {
			t.Errorf("%s%s carries Authorization", s.Host, s.Path)
		}
	}
}

func TestDownloadPackageFailures(t *testing.T) {
	tests := []struct {
		name         string
		zipHandler   func(zip []byte, calls *atomic.Int32) http.HandlerFunc
		opts         []Option
		nonSpool     bool
		wantErr      error
		wantErrText  []string
		wantCalls    int32
		wantContents bool // success despite the trouble
	}{
		{
			name: "tampered body",
			zipHandler: func(zip []byte, _ *atomic.Int32) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					bad := bytes.Clone(zip)
					bad[len(bad)/2] ^= 0xff
					_, _ = w.Write(bad)
				}
			},
			wantErr:     ErrChecksumMismatch,
			wantErrText: []string{"/hashicorp/null", "3.2.1", "linux_amd64", "got sha256", "registry says"},
			wantCalls:   1,
		},
		{
			name: "Content-Length differs from package_size",
			zipHandler: func(zip []byte, _ *atomic.Int32) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Length", strconv.Itoa(len(zip)-1))
					_, _ = w.Write(zip[:len(zip)-1])
				}
			},
			wantErr:     ErrChecksumMismatch,
			wantErrText: []string{"Content-Length"},
			wantCalls:   1,
		},
		{
			name: "longer unframed body than package_size",
			zipHandler: func(zip []byte, _ *atomic.Int32) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					_, _ = w.Write(zip)
					w.(http.Flusher).Flush() // chunked: no Content-Length
					_, _ = w.Write([]byte("trailing junk"))
				}
			},
			wantErr:   ErrChecksumMismatch,
			wantCalls: 1,
		},
		{
			name:        "short body retried, then fails cleanly",
			zipHandler:  shortBody(-1),
			wantErr:     io.ErrUnexpectedEOF,
			wantErrText: []string{"giving up after 4 attempts", "reading body"},
			wantCalls:   4,
		},
		{
			name:         "short body once, then whole",
			zipHandler:   shortBody(1),
			wantCalls:    2,
			wantContents: true,
		},
		{
			name:       "short body into a non-rewindable writer is not retried",
			zipHandler: shortBody(-1),
			nonSpool:   true,
			wantErr:    io.ErrUnexpectedEOF,
			wantCalls:  1,
		},
		{
			name:         "503 then success",
			zipHandler:   statusThenOK(http.StatusServiceUnavailable, 2, ""),
			wantCalls:    3,
			wantContents: true,
		},
		{
			name:        "404 is final",
			zipHandler:  statusThenOK(http.StatusNotFound, 99, ""),
			wantErr:     ErrHTTPStatus,
			wantErrText: []string{"404"},
			wantCalls:   1,
		},
		{
			name:       "501 is not retried",
			zipHandler: statusThenOK(http.StatusNotImplemented, 99, ""),
			wantErr:    ErrHTTPStatus,
			wantCalls:  1,
		},
		{
			name:        "persistent 502 gives up",
			zipHandler:  statusThenOK(http.StatusBadGateway, 99, ""),
			wantErr:     ErrHTTPStatus,
			wantErrText: []string{"502"},
			wantCalls:   4,
		},
		{
			name:       "over the size limit",
			zipHandler: statusThenOK(0, 0, ""),
			opts:       []Option{WithMaxPackageSize(100)},
			wantErr:    ErrTooLarge,
			wantCalls:  0,
		},
		{
			name: "stalled body retried, then fails",
			zipHandler: func(zip []byte, calls *atomic.Int32) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					calls.Add(1)
					w.Header().Set("Content-Length", strconv.Itoa(len(zip)))
					_, _ = w.Write(zip[:10])
					w.(http.Flusher).Flush()
					select {
					case <-r.Context().Done():
					case <-time.After(5 * time.Second):
					}
				}
			},
			opts:      []Option{WithStallTimeout(100 * time.Millisecond), WithRetry(1, time.Millisecond, time.Millisecond)},
			wantErr:   ErrStalled,
			wantCalls: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			f := newProviderFixture(t, func(f *providerFixture) {
				h := tt.zipHandler(f.zip, &calls)
				f.zipHandler = func(w http.ResponseWriter, r *http.Request) {
					if tt.name != "stalled body retried, then fails" {
						calls.Add(1)
					}
					h(w, r)
				}
			})
			c := f.client(t, tt.opts...)
			pkg := f.pkg(t, c)
			var w io.Writer
			var spool *os.File
			if tt.nonSpool {
				w = &bytes.Buffer{}
			} else {
				spool = spoolFile(t, "prefix:")
				w = spool
			}
			sum, n, err := c.DownloadPackage(t.Context(), pkg, w)
			if got := calls.Load(); got != tt.wantCalls {
				t.Errorf("package requested %d times, want %d", got, tt.wantCalls)
			}
			if tt.wantContents {
				if err != nil {
					t.Fatal(err)
				}
				if sum != pkg.SHA256 || n != pkg.Size {
					t.Errorf("got %s/%d", sum, n)
				}
				if got := readAllFrom(t, spool); !bytes.Equal(got, append([]byte("prefix:"), f.zip...)) {
					t.Errorf("spool holds %d bytes, want prefix + %d", len(got), len(f.zip))
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if sum != "" {
				t.Errorf("failed download returned hash %s", sum)
			}
			for _, s := range append(tt.wantErrText, pkg.Provider.Hostname) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
		})
	}
}

// shortBody promises the whole package but sends half, the first times
// times (-1: always), then the whole.
func shortBody(times int32) func(zip []byte, calls *atomic.Int32) http.HandlerFunc {
	return func(zip []byte, calls *atomic.Int32) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(len(zip)))
			if times < 0 || calls.Load() <= times {
				_, _ = w.Write(zip[:len(zip)/2])
				return // net/http closes the connection: the client sees unexpected EOF
			}
			_, _ = w.Write(zip)
		}
	}
}

// statusThenOK answers status the first times times, then the package.
func statusThenOK(status int, times int32, retryAfter string) func(zip []byte, calls *atomic.Int32) http.HandlerFunc {
	return func(zip []byte, calls *atomic.Int32) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if calls.Load() <= times {
				if retryAfter != "" {
					w.Header().Set("Retry-After", retryAfter)
				}
				http.Error(w, "try later", status)
				return
			}
			_, _ = w.Write(zip)
		}
	}
}

func TestDownloadPackageHonoursRetryAfter(t *testing.T) {
	var calls atomic.Int32
	var times [2]time.Time
	f := newProviderFixture(t, func(f *providerFixture) {
		f.zipHandler = func(w http.ResponseWriter, r *http.Request) {
			n := calls.Add(1)
			if n <= 2 {
				times[n-1] = time.Now()
			}
			if n == 1 {
				w.Header().Set("Retry-After", "1")
				http.Error(w, "slow down", http.StatusTooManyRequests)
				return
			}
			_, _ = w.Write(f.zip)
		}
	})
	// Backoff alone would wait 1-5ms; Retry-After asks for a second.
	c := f.client(t)
	pkg := f.pkg(t, c)
	if _, _, err := c.DownloadPackage(t.Context(), pkg, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 2 {
		t.Fatalf("calls = %d, want 2", calls.Load())
	}
	if waited := times[1].Sub(times[0]); waited < 900*time.Millisecond || waited > 5*time.Second {
		t.Errorf("waited %s between attempts, want about 1s", waited)
	}
}

func TestRetryAfterCap(t *testing.T) {
	var calls atomic.Int32
	f := newProviderFixture(t, func(f *providerFixture) {
		f.zipHandler = func(w http.ResponseWriter, r *http.Request) {
			if calls.Add(1) == 1 {
				w.Header().Set("Retry-After", "3600")
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			_, _ = w.Write(f.zip)
		}
	})
	c := f.client(t, WithMaxRetryAfter(10*time.Millisecond))
	start := time.Now()
	if _, _, err := c.DownloadPackage(t.Context(), f.pkg(t, c), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %s: Retry-After was not capped", d)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"1", time.Second, true},
		{" 120 ", 2 * time.Minute, true},
		{"0", 0, true},
		{"-3", 0, false},
		{"", 0, false},
		{"soon", 0, false},
		{"Wed, 01 Jan 2025 12:00:30 GMT", 30 * time.Second, true},
		{"Wed, 01 Jan 2025 11:00:00 GMT", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := parseRetryAfter(tt.in, now)
			if got != tt.want || ok != tt.ok {
				t.Errorf("parseRetryAfter(%q) = %s, %v; want %s, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestBackoffBounds(t *testing.T) {
	c, err := New(WithRetry(5, 10*time.Millisecond, 80*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	for attempt := range 10 {
		for range 50 {
			d := c.backoff(10*time.Millisecond, 80*time.Millisecond, attempt, nil)
			if d < 10*time.Millisecond || d > 80*time.Millisecond {
				t.Fatalf("attempt %d: backoff %s outside 10ms..80ms", attempt, d)
			}
		}
	}
}
