package provenance

import (
	"strings"
	"testing"
)

// The trust decision, case by case: which keys may vouch, and whether a
// provider may come unsigned.
func TestPolicyKeys(t *testing.T) {
	pinnedAcme := map[string][]string{"acme": {"PINNED"}}
	carried := []string{"CARRIED"}
	for _, c := range []struct {
		name     string
		p        Policy
		address  string
		carried  []string
		keys     string
		unsigned bool
		why      string
	}{
		{"zero value trusts nothing", Policy{}, "registry.opentofu.org/acme/widget", carried, "", false, "no trusted key"},
		{"carried keys when vouched for", Policy{CarriedKeysTrusted: true}, "registry.opentofu.org/acme/widget", carried, "CARRIED", false, ""},
		{"pinned keys win over carried ones", Policy{PinnedKeys: pinnedAcme, CarriedKeysTrusted: true}, "registry.opentofu.org/acme/widget", carried, "PINNED", false, ""},
		{"namespace matched case-insensitively", Policy{PinnedKeys: pinnedAcme}, "registry.opentofu.org/ACME/widget", carried, "PINNED", false, ""},
		{"nothing pinned for the namespace", Policy{PinnedKeys: pinnedAcme, CarriedKeysTrusted: true}, "registry.opentofu.org/other/x", carried, "", false, `no key is pinned for namespace "other"`},
		{"OpenTofu's exception: no keys served", Policy{OpenTofuException: true, CarriedKeysTrusted: true}, "registry.opentofu.org/acme/widget", nil, "", true, ""},
		{"OpenTofu's exception is for its registry only", Policy{OpenTofuException: true, CarriedKeysTrusted: true}, "registry.example.com/acme/widget", nil, "", false, ""},
		{"the exception does not apply when keys came", Policy{OpenTofuException: true, CarriedKeysTrusted: true}, "registry.opentofu.org/acme/widget", carried, "CARRIED", false, ""},
		{"allowed unsigned by address", Policy{AllowUnsigned: []string{"registry.opentofu.org/acme/widget"}}, "registry.opentofu.org/acme/widget", carried, "", true, ""},
		{"allowed unsigned by namespace glob", Policy{AllowUnsigned: []string{"registry.opentofu.org/acme/*"}}, "registry.opentofu.org/acme/gadget", nil, "", true, ""},
		{"a glob for another host", Policy{AllowUnsigned: []string{"registry.example.com/acme/*"}}, "registry.opentofu.org/acme/gadget", nil, "", false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			keys, unsigned, why := c.p.Keys(c.address, c.carried)
			if strings.Join(keys, ",") != c.keys || unsigned != c.unsigned || !strings.Contains(why, c.why) {
				t.Fatalf("Keys = %v, %v, %q; want %q, %v, %q", keys, unsigned, why, c.keys, c.unsigned, c.why)
			}
		})
	}
}
