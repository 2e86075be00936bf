package upstream

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
)

// moduleRegistry serves discovery and one module's endpoints.
func moduleRegistry(t *testing.T, download http.HandlerFunc) (*httptest.Server, *recorder) {
	t.Helper()
	rec := &recorder{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/terraform.json", func(w http.ResponseWriter, r *http.Request) {
		serveJSON(w, map[string]string{"modules.v1": "/v1/modules/"})
	})
	mux.HandleFunc("GET /v1/modules/terraform-aws-modules/vpc/aws/versions", func(w http.ResponseWriter, r *http.Request) {
		serveJSON(w, map[string]any{"modules": []any{
			map[string]any{"versions": []any{map[string]string{"version": "v5.8.1"}, map[string]string{"version": "6.0.0"}}},
			map[string]any{"versions": []any{map[string]string{"version": "9.9.9"}}},
		}})
	})
	mux.HandleFunc("GET /v1/modules/terraform-aws-modules/empty/aws/versions", func(w http.ResponseWriter, r *http.Request) {
		serveJSON(w, map[string]any{"modules": []any{}})
	})
	if download != nil {
		mux.HandleFunc("GET /v1/modules/terraform-aws-modules/vpc/aws/6.0.0/download", download)
	}
	srv := newTLSServer(t, rec.wrap(mux))
	return srv, rec
}

func TestModuleVersions(t *testing.T) {
	srv, rec := moduleRegistry(t, nil)
	c := testClient(t, srv, hostOf(srv))
	addr := config.ModuleAddr{Hostname: hostOf(srv), Namespace: "terraform-aws-modules", Name: "vpc", System: "aws"}
	got, err := c.ModuleVersions(t.Context(), addr)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"5.8.1", "6.0.0"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ModuleVersions = %v, want %v", got, want)
	}
	for _, s := range rec.all() {
		if s.Auth != "Bearer "+testToken {
			t.Errorf("%s lacks the token", s.Path)
		}
	}
	for _, name := range []string{"nonesuch", "empty"} {
		addr.Name = name
		if _, err := c.ModuleVersions(t.Context(), addr); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: error %v, want ErrNotFound", name, err)
		}
	}
}

func TestModuleLocation(t *testing.T) {
	const git = "git::https://github.com/terraform-aws-modules/terraform-aws-vpc?ref=25322b6b6be69db6cca7f167d7b0e5327156a595"
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    string // "{base}" stands for the server URL
		wantErr error
	}{
		{
			name: "204 with X-Terraform-Get",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Terraform-Get", git)
				w.WriteHeader(http.StatusNoContent)
			},
			want: git,
		},
		{
			name: "200 with JSON location",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Terraform-Get", "https://ignored.example/x.zip")
				serveJSON(w, map[string]string{"location": git})
			},
			want: git,
		},
		{
			name: "200 with empty location falls back to the header",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Terraform-Get", "https://example.com/vpc.tar.gz")
				serveJSON(w, map[string]string{"location": ""})
			},
			want: "https://example.com/vpc.tar.gz",
		},
		{
			name: "relative ./",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Terraform-Get", "./archive.tgz?archive=tar.gz")
				w.WriteHeader(http.StatusNoContent)
			},
			want: "{base}/v1/modules/terraform-aws-modules/vpc/aws/6.0.0/archive.tgz?archive=tar.gz",
		},
		{
			name: "relative ../",
			handler: func(w http.ResponseWriter, r *http.Request) {
				serveJSON(w, map[string]string{"location": "../archives/6.0.0.zip"})
			},
			want: "{base}/v1/modules/terraform-aws-modules/vpc/aws/archives/6.0.0.zip",
		},
		{
			name: "absolute path",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Terraform-Get", "/blobs/vpc.zip")
				w.WriteHeader(http.StatusNoContent)
			},
			want: "{base}/blobs/vpc.zip",
		},
		{
			name:    "no location at all",
			handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) },
			wantErr: ErrProtocol,
		},
		{
			name:    "404",
			handler: http.NotFound,
			wantErr: ErrNotFound,
		},
		{
			name: "malformed JSON",
			handler: func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write([]byte("{"))
			},
			wantErr: ErrProtocol,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, rec := moduleRegistry(t, tt.handler)
			c := testClient(t, srv, hostOf(srv))
			addr := config.ModuleAddr{Hostname: hostOf(srv), Namespace: "terraform-aws-modules", Name: "vpc", System: "aws"}
			got, err := c.ModuleLocation(t.Context(), addr, "6.0.0")
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := replaceBase(tt.want, srv.URL); got != want {
				t.Errorf("ModuleLocation = %s, want %s", got, want)
			}
			for _, s := range rec.all() {
				if s.Auth != "Bearer "+testToken {
					t.Errorf("%s lacks the token", s.Path)
				}
			}
		})
	}
}

func replaceBase(s, base string) string {
	return string(bytes.ReplaceAll([]byte(s), []byte("{base}"), []byte(base)))
}

// fakeInternet serves every https host from one in-process server whose
// certificate claims github.com and friends, so Fetch's host rules are
// tested on the real names.
func fakeInternet(t *testing.T, h http.Handler) *http.Client {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "fake internet"},
		DNSNames:     []string{"github.com", "api.github.com", "codeload.github.com", "objects.githubusercontent.com", "example.com"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	addr := srv.Listener.Addr().String()
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
}

func TestFetch(t *testing.T) {
	archive := bytes.Repeat([]byte("module archive "), 1000)
	rec := &recorder{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET github.com/org/repo/archive/v1.zip", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://codeload.github.com/org/repo/zip/v1", http.StatusFound)
	})
	mux.HandleFunc("GET codeload.github.com/org/repo/zip/v1", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(archive)
	})
	mux.HandleFunc("GET github.com/org/repo/releases/download/v1/m.zip", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://objects.githubusercontent.com/blob?X-Amz-Signature=abc", http.StatusFound)
	})
	mux.HandleFunc("GET objects.githubusercontent.com/blob", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(archive)
	})
	mux.HandleFunc("GET example.com/m.zip", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(archive)
	})
	hc := fakeInternet(t, rec.wrap(mux))
	c, err := New(WithHTTPClient(hc), WithRetry(1, time.Millisecond, time.Millisecond),
		WithGitHubToken("ghp_test"), WithTokens(func(string) string { return testToken }))
	if err != nil {
		t.Fatal(err)
	}
	wantAuth := map[string]string{
		"github.com":                    "Bearer ghp_test",
		"codeload.github.com":           "Bearer ghp_test",
		"objects.githubusercontent.com": "",
		"example.com":                   "",
	}
	for _, u := range []string{
		"https://github.com/org/repo/archive/v1.zip",
		"https://github.com/org/repo/releases/download/v1/m.zip",
		"https://example.com/m.zip",
	} {
		var buf bytes.Buffer
		n, err := c.Fetch(t.Context(), u, &buf, 0)
		if err != nil {
			t.Fatal(err)
		}
		if n != int64(len(archive)) || !bytes.Equal(buf.Bytes(), archive) {
			t.Errorf("%s: got %d bytes", u, n)
		}
	}
	for _, s := range rec.all() {
		if want := wantAuth[s.Host]; s.Auth != want {
			t.Errorf("%s%s: Authorization %q, want %q", s.Host, s.Path, s.Auth, want)
		}
	}

	if _, err := c.Fetch(t.Context(), "https://example.com/m.zip", &bytes.Buffer{}, 100); !errors.Is(err, ErrTooLarge) {
		t.Errorf("size cap: error %v, want ErrTooLarge", err)
	}
	if _, err := c.Fetch(t.Context(), "file:///etc/passwd", &bytes.Buffer{}, 0); !errors.Is(err, ErrProtocol) {
		t.Errorf("file URL: error %v, want ErrProtocol", err)
	}
}
