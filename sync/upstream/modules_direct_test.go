package upstream

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
)

// TestModuleLocationDirect covers OpenTofu 1.12's direct downloads: a 200
// JSON answer with use_registry_credentials makes the location the
// registry's own package URL, relative ones resolved, the credentials host
// named only when the field is true.
func TestModuleLocationDirect(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    string // "{base}" stands for the server URL, "{host}" for its host
		wantErr error
	}{
		{"true, absolute", `{"location":"https://pkg.example/vpc.zip","use_registry_credentials":true}`,
			"direct::https://pkg.example/vpc.zip#registry-credentials={host}", nil},
		{"false, relative path", `{"location":"pkg/vpc.tgz","use_registry_credentials":false}`,
			"direct::{base}/v1/modules/terraform-aws-modules/vpc/aws/6.0.0/pkg/vpc.tgz", nil},
		{"true, root-relative", `{"location":"/blobs/vpc","use_registry_credentials":true}`,
			"direct::{base}/blobs/vpc#registry-credentials={host}", nil},
		{"null is absent: indirect", `{"location":"git::https://example.com/r.git?ref=v1","use_registry_credentials":null}`,
			"git::https://example.com/r.git?ref=v1", nil},
		{"not a bool", `{"location":"https://pkg.example/x.zip","use_registry_credentials":"yes"}`, "", ErrProtocol},
		{"git location refused", `{"location":"git::https://example.com/r.git","use_registry_credentials":false}`, "", ErrProtocol},
		{"fragment refused", `{"location":"https://pkg.example/x.zip#frag","use_registry_credentials":false}`, "", ErrProtocol},
		{"empty location", `{"location":"","use_registry_credentials":true}`, "", ErrProtocol},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := moduleRegistry(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(tc.body))
			})
			c := testClient(t, srv, hostOf(srv))
			addr := config.ModuleAddr{Hostname: hostOf(srv), Namespace: "terraform-aws-modules", Name: "vpc", System: "aws"}
			got, err := c.ModuleLocation(t.Context(), addr, "6.0.0")
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := strings.NewReplacer("{base}", srv.URL, "{host}", hostOf(srv)).Replace(tc.want)
			if got != want {
				t.Fatalf("ModuleLocation = %q, want %q", got, want)
			}
		})
	}
}

// TestFetchWithRegistryCredentials checks the token goes with a direct
// download only through FetchWithRegistryCredentials, and TerraformGet
// sends none.
func TestFetchWithRegistryCredentials(t *testing.T) {
	rec := &recorder{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /pkg.zip", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("PK\x03\x04zip")) })
	mux.HandleFunc("GET /lookup", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("terraform-get") != "1" {
			http.Error(w, "want terraform-get=1", http.StatusBadRequest)
			return
		}
		w.Header().Set("X-Terraform-Get", "git::https://example.com/r.git")
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /page", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`<html><head><meta name="terraform-get" content="https://example.com/x.zip"></head></html>`))
	})
	srv := newTLSServer(t, rec.wrap(mux))
	c := testClient(t, srv, "registry.example")
	var buf bytes.Buffer
	if _, err := c.FetchWithRegistryCredentials(t.Context(), "registry.example", srv.URL+"/pkg.zip", &buf, 1<<20); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Fetch(t.Context(), srv.URL+"/pkg.zip", &buf, 1<<20); err != nil {
		t.Fatal(err)
	}
	h, body, err := c.TerraformGet(t.Context(), srv.URL+"/lookup?terraform-get=1", 1<<10)
	if err != nil || h != "git::https://example.com/r.git" || body != nil {
		t.Fatalf("TerraformGet = %q, %q, %v", h, body, err)
	}
	h, body, err = c.TerraformGet(t.Context(), srv.URL+"/page?terraform-get=1", 1<<10)
	if err != nil || h != "" || !bytes.Contains(body, []byte("terraform-get")) {
		t.Fatalf("TerraformGet page = %q, %q, %v", h, body, err)
	}
	reqs := rec.all()
	if len(reqs) != 4 {
		t.Fatalf("requests: %+v", reqs)
	}
	if reqs[0].Auth != "Bearer "+testToken {
		t.Errorf("direct download with credentials sent %q", reqs[0].Auth)
	}
	for _, r := range reqs[1:] {
		if r.Auth != "" {
			t.Errorf("%s sent Authorization %q", r.Path, r.Auth)
		}
	}
}
