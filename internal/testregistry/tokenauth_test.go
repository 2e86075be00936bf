package testregistry_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient"
	"github.com/regclient/regclient/config"
	"github.com/regclient/regclient/scheme/reg"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/errs"
	"github.com/regclient/regclient/types/ref"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
)

// tokenClient configures regclient as sync.OpenTarget does: the host with
// the CA, credentials only from a Docker config file ("" for anonymous).
func tokenClient(r *testregistry.Registry, dockerCfg string) *regclient.RegClient {
	opts := []regclient.Opt{
		regclient.WithConfigHost(config.Host{Name: r.Host, Hostname: r.Host, RegCert: string(r.CACertPEM)}),
		regclient.WithRegOpts(reg.WithDelay(10*time.Millisecond, 50*time.Millisecond)),
		regclient.WithRetryLimit(1),
	}
	if dockerCfg != "" {
		opts = append(opts, regclient.WithDockerCredsFile(dockerCfg))
	}
	return regclient.New(opts...)
}

func putBlob(ctx context.Context, rc *regclient.RegClient, refStr string, data []byte) error {
	r, err := ref.New(refStr)
	if err != nil {
		return err
	}
	_, err = rc.BlobPut(ctx, r, descriptor.Descriptor{MediaType: "archive/zip", Digest: digest.FromBytes(data), Size: int64(len(data))}, bytes.NewReader(data))
	return err
}

func TestTokenAuthScopes(t *testing.T) {
	ctx := context.Background()
	r := testregistry.New(t, testregistry.WithTLS(), testregistry.WithTokenAuth(
		testregistry.TokenUser{Name: "mirror", Password: "s3cret", Grants: []testregistry.Grant{
			{Repository: "providers/*", Actions: []string{"pull", "push", "delete"}},
		}},
		testregistry.TokenUser{Name: "reader", Password: "r3ad", Grants: []testregistry.Grant{
			{Repository: "*", Actions: []string{"pull"}},
			{Repository: "scratch", Actions: []string{"push"}},
		}},
	))
	if !strings.HasPrefix(r.Issuer.URL, "https://127.0.0.1:") {
		t.Fatalf("issuer URL = %q, want https on 127.0.0.1", r.Issuer.URL)
	}
	mirror := tokenClient(r, r.DockerConfigFor(t, "mirror", "s3cret"))

	t.Run("push to a granted repository", func(t *testing.T) {
		a := pushIndex(ctx, t, mirror, r.Ref("providers/hashicorp/null:3.2.0"), []byte("zip bytes"))
		checkIndex(ctx, t, tokenClient(r, ""), r.Ref("providers/hashicorp/null:3.2.0"), a)
		var pushed bool
		for _, tok := range r.Issuer.Issued() {
			for _, acc := range tok.Access {
				if tok.User == "mirror" && acc.Name == "providers/hashicorp/null" && slices.Contains(acc.Actions, "push") {
					pushed = true
				}
			}
		}
		if !pushed {
			t.Fatalf("no token with push on providers/hashicorp/null for mirror; issued %+v", r.Issuer.Issued())
		}
	})

	t.Run("push outside the user's scope is refused", func(t *testing.T) {
		err := putBlob(ctx, mirror, r.Ref("modules/x/y"), []byte("not mine"))
		if !errors.Is(err, errs.ErrHTTPUnauthorized) {
			t.Fatalf("push to modules/x/y as mirror: err = %v, want unauthorized", err)
		}
		reader := tokenClient(r, r.DockerConfigFor(t, "reader", "r3ad"))
		if err := putBlob(ctx, reader, r.Ref("providers/hashicorp/null"), []byte("reader push")); !errors.Is(err, errs.ErrHTTPUnauthorized) {
			t.Fatalf("push to providers/hashicorp/null as reader: err = %v, want unauthorized", err)
		}
		if err := putBlob(ctx, reader, r.Ref("scratch"), []byte("reader scratch")); err != nil {
			t.Fatalf("push to scratch as reader (granted): %v", err)
		}
	})

	t.Run("anonymous pull works, anonymous push does not", func(t *testing.T) {
		anon := tokenClient(r, "")
		rf, _ := ref.New(r.Ref("providers/hashicorp/null"))
		tl, err := anon.TagList(ctx, rf)
		if err != nil {
			t.Fatalf("anonymous tag list: %v", err)
		}
		if tags, _ := tl.GetTags(); !slices.Equal(tags, []string{"3.2.0"}) {
			t.Fatalf("anonymous tags = %v, want [3.2.0]", tags)
		}
		if err := putBlob(ctx, anon, r.Ref("providers/hashicorp/null"), []byte("anon")); !errors.Is(err, errs.ErrHTTPUnauthorized) {
			t.Fatalf("anonymous push: err = %v, want unauthorized", err)
		}
	})

	t.Run("wrong password gets no token", func(t *testing.T) {
		before := r.Issuer.Denied()
		bad := tokenClient(r, r.DockerConfigFor(t, "mirror", "wrong"))
		if err := putBlob(ctx, bad, r.Ref("providers/hashicorp/null"), []byte("bad")); err == nil {
			t.Fatal("push with a wrong password succeeded")
		}
		if r.Issuer.Denied() == before {
			t.Fatal("issuer did not refuse the wrong password")
		}
	})

	t.Run("the registry challenges with realm, service and scope", func(t *testing.T) {
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfigFor(t, r)}}
		resp, err := client.Get(r.URL + "/v2/providers/hashicorp/null/tags/list")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		ch := resp.Header.Get("WWW-Authenticate")
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(ch, `realm="`+r.Issuer.URL+`"`) ||
			!strings.Contains(ch, `service="testregistry"`) || !strings.Contains(ch, `scope="repository:providers/hashicorp/null:pull"`) {
			t.Fatalf("status %d, WWW-Authenticate %q", resp.StatusCode, ch)
		}
	})
}

func TestTokenAuthNoAnonymous(t *testing.T) {
	ctx := context.Background()
	r := testregistry.New(t, testregistry.WithTLS(), testregistry.WithTokenAuth(), testregistry.WithAnonymousGrants())
	rf, _ := ref.New(r.Ref("anything"))
	if _, err := tokenClient(r, "").TagList(ctx, rf); !errors.Is(err, errs.ErrHTTPUnauthorized) {
		t.Fatalf("anonymous tag list without anonymous grants: err = %v, want unauthorized", err)
	}
}
