package config

import (
	"errors"
	"strings"
	"testing"
)

func TestRenderProviderRepository(t *testing.T) {
	aws := ProviderAddr{DefaultHostname, "hashicorp", "aws"}
	tests := []struct {
		template string
		addr     ProviderAddr
		want     string
		wantErr  error
	}{
		{DefaultProvidersRepository, aws, "opentofu-providers/hashicorp/aws", nil},
		{"${hostname}/${namespace}/${type}", aws, "registry.opentofu.org/hashicorp/aws", nil},
		{"${hostname}/${namespace}/${type}", ProviderAddr{Namespace: "hashicorp", Type: "aws"}, "registry.opentofu.org/hashicorp/aws", nil},
		{"p/${namespace}-${type}", aws, "p/hashicorp-aws", nil},
		{"mirror", aws, "mirror", nil},
		{"p/${name}", aws, "", ErrInvalidTemplate},
		{"p/${Type}", aws, "", ErrInvalidTemplate},
		{"p/${type", aws, "", ErrInvalidTemplate},
		{"p/${}", aws, "", ErrInvalidTemplate},
		{"P/${type}", aws, "", ErrInvalidRepository},
		{"p/$type", aws, "", ErrInvalidRepository},
		{"${hostname}/${type}", ProviderAddr{"localhost:5000", "a", "b"}, "", ErrInvalidRepository},
		{"", aws, "", ErrInvalidRepository},
	}
	for _, tt := range tests {
		t.Run(tt.template, func(t *testing.T) {
			got, err := RenderProviderRepository(tt.template, tt.addr)
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Errorf("RenderProviderRepository(%q, %v) = %q, %v; want %q, %v", tt.template, tt.addr, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestRenderModuleRepository(t *testing.T) {
	tests := []struct {
		template string
		addr     ModuleAddr
		want     string
		wantErr  error
	}{
		{DefaultModulesRepository, ModuleAddr{DefaultHostname, "terraform-aws-modules", "vpc", "aws"}, "opentofu-modules/terraform-aws-modules/vpc/aws", nil},
		{DefaultModulesRepository, ModuleAddr{DefaultHostname, "Azure", "Network", "azurerm"}, "opentofu-modules/azure/network/azurerm", nil},
		{"${hostname}/${namespace}/${name}/${system}", ModuleAddr{"Example.com", "a", "b", "c"}, "example.com/a/b/c", nil},
		{DefaultModulesRepository, ModuleAddr{DefaultHostname, "my_org", "a__b", "c"}, "opentofu-modules/my_org/a__b/c", nil},
		{DefaultModulesRepository, ModuleAddr{DefaultHostname, "a", "b___c", "d"}, "", ErrInvalidRepository},
		{DefaultModulesRepository, ModuleAddr{DefaultHostname, "a", "b_-c", "d"}, "", ErrInvalidRepository},
		{"m/${type}", ModuleAddr{DefaultHostname, "a", "b", "c"}, "", ErrInvalidTemplate},
	}
	for _, tt := range tests {
		t.Run(tt.addr.String(), func(t *testing.T) {
			got, err := RenderModuleRepository(tt.template, tt.addr)
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Errorf("RenderModuleRepository(%q, %v) = %q, %v; want %q, %v", tt.template, tt.addr, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestValidRepositoryName(t *testing.T) {
	tests := map[string]bool{
		"a":                                true,
		"opentofu-providers/hashicorp/aws": true,
		"a.b_c__d---e/f0":                  true,
		"registry.opentofu.org/x/y":        true,
		"":                                 false,
		"A":                                false,
		"a//b":                             false,
		"/a":                               false,
		"a/":                               false,
		"a___b":                            false,
		"a_-b":                             false,
		"a..b":                             false,
		"-a":                               false,
		"a-":                               false,
		"a:b":                              false,
		"a b":                              false,
		strings.Repeat("a", 255):           true,
		strings.Repeat("a", 256):           false,
	}
	for name, want := range tests {
		if got := ValidRepositoryName(name); got != want {
			t.Errorf("ValidRepositoryName(%q) = %v; want %v", name, got, want)
		}
	}
}
