package upstream

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
)

// connServer is an HTTPS server offering HTTP/2, as GitHub and the public
// registries do, that records each request's protocol and counts the
// connections opened to it.
type connServer struct {
	srv *httptest.Server

	mu     sync.Mutex
	opened int               // connections accepted
	protos map[string]string // path prefix -> protocols seen ("HTTP/2.0", "HTTP/1.1")
	// gate holds each /files/ request until want of them are in flight
	// at once (or a deadline passes), so concurrent downloads overlap.
	want, inFlight int
	gate           chan struct{}
}

func newConnServer(t *testing.T) *connServer {
	s := &connServer{protos: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/providers/acme/widget/versions", func(w http.ResponseWriter, r *http.Request) {
		s.saw("api", r.Proto)
		serveJSON(w, map[string]any{"versions": []any{map[string]any{"version": "1.0.0", "protocols": []string{"5.0"},
			"platforms": []any{map[string]any{"os": "linux", "arch": "amd64"}}}}})
	})
	mux.HandleFunc("/files/", func(w http.ResponseWriter, r *http.Request) {
		s.saw("files", r.Proto)
		s.mu.Lock()
		s.inFlight++
		if s.inFlight == s.want {
			close(s.gate)
		}
		gate := s.gate
		s.mu.Unlock()
		select {
		case <-gate:
		case <-time.After(5 * time.Second):
		}
		w.Header().Set("Content-Length", "65536")
		_, _ = w.Write(make([]byte, 65536))
	})
	s.srv = httptest.NewUnstartedServer(mux)
	s.srv.EnableHTTP2 = true
	s.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.mu.Lock()
			s.opened++
			s.mu.Unlock()
		}
	}
	s.srv.StartTLS()
	t.Cleanup(s.srv.Close)
	return s
}

func (s *connServer) saw(kind, proto string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !strings.Contains(s.protos[kind], proto) {
		s.protos[kind] += proto + " "
	}
}

// round runs n calls of f at once and returns the connections opened
// meanwhile; for downloads, the server holds each until all n arrived.
func (s *connServer) round(t *testing.T, n int, f func() error) int {
	t.Helper()
	s.mu.Lock()
	before := s.opened
	s.want, s.inFlight, s.gate = n, 0, make(chan struct{})
	s.mu.Unlock()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() { errs <- f() })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opened - before
}

// Over an internet link one TCP connection carries far less than the link:
// downloads must each have their own connection (HTTP/1.1), kept for the
// next package, while API calls may share one HTTP/2 connection.
func TestDownloadsTakeTheirOwnConnectionsAndKeepThem(t *testing.T) {
	s := newConnServer(t)
	host := "registry.example"
	c, err := New(WithHTTPClient(s.srv.Client()), WithRetry(0, time.Millisecond, time.Millisecond),
		WithHostServices(map[string]map[string]string{host: {"providers.v1": s.srv.URL + "/v1/providers/"}}))
	if err != nil {
		t.Fatal(err)
	}
	addr := config.ProviderAddr{Hostname: host, Namespace: "acme", Type: "widget"}
	const n = 8
	versions := func() error {
		_, err := c.ProviderVersions(t.Context(), addr)
		return err
	}
	// The first calls may each dial before one connection is up; after
	// that, they share it.
	s.round(t, 1, versions)
	api := s.round(t, n, versions)
	if s.protos["api"] != "HTTP/2.0 " {
		t.Errorf("API calls used %q, want HTTP/2.0 (many small calls share a connection)", s.protos["api"])
	}
	if api > 0 {
		t.Errorf("%d concurrent API calls opened %d connections, want them multiplexed", n, api)
	}
	fetch := func() error {
		_, err := c.Fetch(t.Context(), s.srv.URL+"/files/pkg.zip", io.Discard, 0)
		return err
	}
	if got := s.round(t, n, fetch); got != n {
		t.Errorf("%d concurrent downloads opened %d connections, want one each", n, got)
	}
	if s.protos["files"] != "HTTP/1.1 " {
		t.Errorf("downloads used %q, want HTTP/1.1 only: over HTTP/2 they would share one connection's bandwidth", s.protos["files"])
	}
	if got := s.round(t, n, fetch); got != 0 {
		t.Errorf("the next %d downloads opened %d new connections, want the %d idle ones reused", n, got, n)
	}
}
