package doctor

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/regclient/regclient"
	"github.com/regclient/regclient/types/errs"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
)

func TestDefaultRepository(t *testing.T) {
	for tmpl, want := range map[string]string{
		config.DefaultProvidersRepository:              "opentofu-providers/" + ScratchName,
		"mirror/tofu/${hostname}/${namespace}/${type}": "mirror/tofu/" + ScratchName,
		"${namespace}/${type}":                         ScratchName,
		"fixed/repo":                                   "fixed/repo/" + ScratchName,
		"team-a/providers-${namespace}-${type}":        "team-a/" + ScratchName,
	} {
		if got := DefaultRepository(tmpl); got != want {
			t.Errorf("DefaultRepository(%q) = %q, want %q", tmpl, got, want)
		}
	}
}

func TestRefusalOf(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("failed to put manifest x: request failed: %w: {\"errors\":[{\"code\":\"UNSUPPORTED\",\"message\":\"no subject\"}]}\n", fmt.Errorf("%w: Method Not Allowed [http 405]", errs.ErrHTTPStatus)), "405 UNSUPPORTED: no subject"},
		{fmt.Errorf("request failed: %w: <html><head><title>413 Request Entity Too Large</title></head></html>", fmt.Errorf("%w: Request Entity Too Large [http 413]", errs.ErrHTTPStatus)), "413 Request Entity Too Large"},
		{fmt.Errorf("x: %w", fmt.Errorf("%w [http 401]", errs.ErrHTTPUnauthorized)), "401"},
		{errors.New("dial tcp: connection refused"), "dial tcp: connection refused"},
	} {
		if got := refusalOf(tc.err).String(); got != tc.want {
			t.Errorf("refusalOf(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
	if !refusalOf(fmt.Errorf("%w [http 401]", errs.ErrHTTPUnauthorized)).Unauthorized() {
		t.Error("401 is not unauthorized")
	}
}

func TestRunRefusesLayouts(t *testing.T) {
	_, err := Run(context.Background(), config.Target{Registry: "oci-layout:/tmp/x"}, regclient.New())
	if !errors.Is(err, ErrNotRegistry) {
		t.Fatalf("err = %v, want ErrNotRegistry", err)
	}
	_, err = Run(context.Background(), config.Target{Registry: "127.0.0.1:1"}, regclient.New(), WithRepository("Bad_Name"))
	if !errors.Is(err, ErrInvalidRepository) {
		t.Fatalf("err = %v, want ErrInvalidRepository", err)
	}
}
