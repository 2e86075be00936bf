package upstream

import (
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDiscover(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		service string
		want    string // "{base}" stands for the server URL
		wantErr error
	}{
		{
			name: "relative",
			handler: func(w http.ResponseWriter, r *http.Request) {
				serveJSON(w, map[string]string{"providers.v1": "/v1/providers/"})
			},
			service: ProvidersService,
			want:    "{base}/v1/providers/",
		},
		{
			name: "relative without trailing slash gets one",
			handler: func(w http.ResponseWriter, r *http.Request) {
				serveJSON(w, map[string]string{"modules.v1": "/api/modules"})
			},
			service: ModulesService,
			want:    "{base}/api/modules/",
		},
		{
			name: "absolute",
			handler: func(w http.ResponseWriter, r *http.Request) {
				serveJSON(w, map[string]string{"providers.v1": "https://api.example.com/terraform/providers"})
			},
			service: ProvidersService,
			want:    "https://api.example.com/terraform/providers/",
		},
		{
			name: "content type with charset",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json; charset=utf-8")
				_, _ = w.Write([]byte(`{"providers.v1":"/p/"}`))
			},
			service: ProvidersService,
			want:    "{base}/p/",
		},
		{
			name:    "404 means no services",
			handler: http.NotFound,
			service: ProvidersService,
			wantErr: ErrNoService,
		},
		{
			name: "service missing",
			handler: func(w http.ResponseWriter, r *http.Request) {
				serveJSON(w, map[string]string{"modules.v1": "/m/"})
			},
			service: ProvidersService,
			wantErr: ErrNoService,
		},
		{
			name: "non-http scheme",
			handler: func(w http.ResponseWriter, r *http.Request) {
				serveJSON(w, map[string]string{"providers.v1": "ftp://example.com/p/"})
			},
			service: ProvidersService,
			wantErr: ErrProtocol,
		},
		{
			name: "service is not a string",
			handler: func(w http.ResponseWriter, r *http.Request) {
				serveJSON(w, map[string]any{"providers.v1": 42})
			},
			service: ProvidersService,
			wantErr: ErrProtocol,
		},
		{
			name: "wrong content type",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				_, _ = w.Write([]byte(`{"providers.v1":"/p/"}`))
			},
			service: ProvidersService,
			wantErr: ErrProtocol,
		},
		{
			name: "malformed JSON",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"providers.v1":`))
			},
			service: ProvidersService,
			wantErr: ErrProtocol,
		},
		{
			name: "unauthorized",
			handler: func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "you sent "+r.Header.Get("Authorization"), http.StatusUnauthorized)
			},
			service: ProvidersService,
			wantErr: ErrUnauthorized,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			mux := http.NewServeMux()
			mux.Handle("GET /.well-known/terraform.json", tt.handler)
			srv := newTLSServer(t, rec.wrap(mux))
			c := testClient(t, srv, hostOf(srv))
			u, err := c.Discover(t.Context(), hostOf(srv), tt.service)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), hostOf(srv)) {
					t.Errorf("error %q does not name the host", err)
				}
				if strings.Contains(err.Error(), testToken) {
					t.Errorf("error %q contains the token", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.ReplaceAll(tt.want, "{base}", srv.URL); u.String() != want {
				t.Errorf("Discover = %s, want %s", u, want)
			}
			got := rec.all()
			if len(got) != 1 || got[0].Auth != "Bearer "+testToken || got[0].UA != "upstream-test/1" {
				t.Errorf("requests = %+v, want one with token and user agent", got)
			}
		})
	}
}

func TestDiscoverRedirectResolvesAgainstFinalURL(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/terraform.json", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/moved/deeper/terraform.json", http.StatusMovedPermanently)
	})
	mux.HandleFunc("GET /moved/deeper/terraform.json", func(w http.ResponseWriter, r *http.Request) {
		serveJSON(w, map[string]string{"providers.v1": "v1/providers", "modules.v1": "../mods/"})
	})
	srv := newTLSServer(t, mux)
	c := testClient(t, srv, "")
	for service, want := range map[string]string{
		ProvidersService: srv.URL + "/moved/deeper/v1/providers/",
		ModulesService:   srv.URL + "/moved/mods/",
	} {
		u, err := c.Discover(t.Context(), hostOf(srv), service)
		if err != nil {
			t.Fatal(err)
		}
		if u.String() != want {
			t.Errorf("%s = %s, want %s", service, u, want)
		}
	}
}

func TestDiscoverCachesPerHost(t *testing.T) {
	rec := &recorder{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/terraform.json", func(w http.ResponseWriter, r *http.Request) {
		serveJSON(w, map[string]string{"providers.v1": "/p/", "modules.v1": "/m/"})
	})
	srv := newTLSServer(t, rec.wrap(mux))
	c := testClient(t, srv, "")
	for range 3 {
		for _, s := range []string{ProvidersService, ModulesService} {
			if _, err := c.Discover(t.Context(), strings.ToUpper(hostOf(srv)), s); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A returned URL is the caller's to change.
	u, _ := c.Discover(t.Context(), hostOf(srv), ProvidersService)
	u.Path = "/changed/"
	if u2, _ := c.Discover(t.Context(), hostOf(srv), ProvidersService); u2.Path != "/p/" {
		t.Errorf("cache was changed through a returned URL: %s", u2)
	}
	if n := rec.count("/.well-known/"); n != 1 {
		t.Errorf("discovery fetched %d times, want 1", n)
	}
}

func TestDiscoverHostServicesOverride(t *testing.T) {
	rec := &recorder{}
	srv := newTLSServer(t, rec.wrap(http.NotFoundHandler()))
	c := testClient(t, srv, "", WithHostServices(map[string]map[string]string{
		"Private.Example.COM": {ProvidersService: srv.URL + "/custom/providers"},
	}))
	u, err := c.Discover(t.Context(), "private.example.com", ProvidersService)
	if err != nil {
		t.Fatal(err)
	}
	if want := srv.URL + "/custom/providers/"; u.String() != want {
		t.Errorf("Discover = %s, want %s", u, want)
	}
	if _, err := c.Discover(t.Context(), "private.example.com", ModulesService); !errors.Is(err, ErrNoService) {
		t.Errorf("unlisted service: error %v, want ErrNoService", err)
	}
	if n := len(rec.all()); n != 0 {
		t.Errorf("override made %d requests, want none", n)
	}
	if _, err := New(WithHostServices(map[string]map[string]string{"h": {ProvidersService: "/relative"}})); err == nil {
		t.Error("New accepted a relative override URL")
	}
}

func TestWithCAFile(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/terraform.json", func(w http.ResponseWriter, r *http.Request) {
		serveJSON(w, map[string]string{"providers.v1": "/p/"})
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusting client's handshake failure
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}

	plain, err := New(WithRetry(0, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Discover(t.Context(), hostOf(srv), ProvidersService); err == nil {
		t.Fatal("a client without the CA trusted the test server")
	}
	c, err := New(WithCAFile(caFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Discover(t.Context(), hostOf(srv), ProvidersService); err != nil {
		t.Fatal(err)
	}

	empty := filepath.Join(t.TempDir(), "empty.pem")
	if err := os.WriteFile(empty, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(WithCAFile(empty)); err == nil {
		t.Error("New accepted a CA file without certificates")
	}
}
