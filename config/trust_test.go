package config

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestTrustSection(t *testing.T) {
	cfg, err := Parse("mirror.yaml", []byte(`version: 1
trust:
  bundle_keys: [keys/bundle-signers.asc, /etc/tofu-oci-mirror/other.asc]
  provider_keys: provider-keys/
  allow_unsigned_providers:
    - hashicorp/null
    - registry.example.com/acme/*
    - internal/*
`))
	if err != nil {
		t.Fatal(err)
	}
	want := Trust{
		BundleKeys:             []string{filepath.Join("keys", "bundle-signers.asc"), "/etc/tofu-oci-mirror/other.asc"},
		ProviderKeys:           "provider-keys",
		AllowUnsignedProviders: []string{"registry.opentofu.org/hashicorp/null", "registry.example.com/acme/*", "registry.opentofu.org/internal/*"},
	}
	if strings.Join(cfg.Trust.BundleKeys, ",") != strings.Join(want.BundleKeys, ",") || filepath.Clean(cfg.Trust.ProviderKeys) != want.ProviderKeys ||
		strings.Join(cfg.Trust.AllowUnsignedProviders, ",") != strings.Join(want.AllowUnsignedProviders, ",") {
		t.Fatalf("Trust = %+v, want %+v", cfg.Trust, want)
	}
}

func TestTrustSectionMistakes(t *testing.T) {
	_, err := Parse("mirror.yaml", []byte(`version: 1
trust:
  bundle_keys: signers.asc
  provider_keys: [a]
  allow_unsigned_providers: ["*/*/*", "hashicorp/*/x"]
  pinned: yes
`))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, s := range []string{"mirror.yaml:3:", "trust.bundle_keys must be a list", "mirror.yaml:4:", "trust.provider_keys", "mirror.yaml:5:",
		"trust.allow_unsigned_providers[0]", "trust.allow_unsigned_providers[1]", "mirror.yaml:6:", "pinned"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error lacks %q:\n%v", s, err)
		}
	}
}
