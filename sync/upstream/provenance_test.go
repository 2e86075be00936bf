package upstream

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
)

func TestVerifyProvenance(t *testing.T) {
	tests := []struct {
		name         string
		tweak        func(t *testing.T, f *providerFixture)
		policy       SignaturePolicy
		wantErr      error
		wantUnsigned bool
		wantWarning  string
	}{
		{name: "good"},
		{
			name: "tampered SHA256SUMS",
			tweak: func(t *testing.T, f *providerFixture) {
				f.sums = bytes.Replace(f.sums, []byte("darwin"), []byte("darwix"), 1)
			},
			wantErr: ErrSignature,
		},
		{
			// OpenTofu reads only the installed file's line; so do we.
			name: "a malformed line for another file",
			tweak: func(t *testing.T, f *providerFixture) {
				f.sums = append([]byte("not-a-hash  terraform-provider-null_3.2.1_freebsd_arm.zip\n"), f.sums...)
				f.sig = detachSign(t, f.rel.signer, f.sums, nil)
			},
			wantWarning: "SHA256SUMS line 1: too short for a SHA-256: ignored",
		},
		{
			name: "signed SHA256SUMS has another hash for the file",
			tweak: func(t *testing.T, f *providerFixture) {
				f.sums = bytes.Replace(f.sums, []byte(sha256hex(f.rel.zip)), []byte(strings.Repeat("0", 64)), 1)
				f.sig = detachSign(t, f.rel.signer, f.sums, nil)
			},
			wantErr: ErrChecksumMismatch,
		},
		{
			name: "signed SHA256SUMS lacks the file",
			tweak: func(t *testing.T, f *providerFixture) {
				f.sums = fmt.Appendf(nil, "%s  other.zip\n", sha256hex(f.rel.zip))
				f.sig = detachSign(t, f.rel.signer, f.sums, nil)
			},
			wantErr: ErrChecksumMismatch,
		},
		{
			name: "signature over other bytes",
			tweak: func(t *testing.T, f *providerFixture) {
				f.sig = detachSign(t, f.rel.signer, []byte("something else"), nil)
			},
			wantErr: ErrSignature,
		},
		{
			name:    "signature is garbage",
			tweak:   func(t *testing.T, f *providerFixture) { f.sig = []byte("not a signature at all") },
			wantErr: ErrSignature,
		},
		{
			name: "signed by a key the registry does not offer",
			tweak: func(t *testing.T, f *providerFixture) {
				stranger, _ := newKey(t, keyConfig())
				f.sig = detachSign(t, stranger, f.sums, nil)
			},
			wantErr: ErrSignature,
		},
		{
			name: "first offered key unknown, second verifies",
			tweak: func(t *testing.T, f *providerFixture) {
				_, strangerArmor := newKey(t, keyConfig())
				f.keys = append([]SigningKey{{KeyID: "X", ASCIIArmor: strangerArmor}}, f.keys...)
			},
		},
		{
			name:    "key is not armored",
			tweak:   func(t *testing.T, f *providerFixture) { f.keys = []SigningKey{{ASCIIArmor: "garbage"}} },
			wantErr: ErrSignature,
		},
		{
			name: "packages zh hash differs from shasum",
			tweak: func(t *testing.T, f *providerFixture) {
				f.packages = map[string]any{f.rel.platform.String(): map[string]any{"hashes": []string{"zh:" + strings.Repeat("1", 64)}}}
			},
			wantErr: ErrChecksumMismatch,
		},
		{
			name:    "no keys on a host other than registry.opentofu.org",
			tweak:   func(t *testing.T, f *providerFixture) { f.keys = nil },
			wantErr: ErrNoSigningKeys,
		},
		{
			name: "expired key accepted with a warning",
			tweak: func(t *testing.T, f *providerFixture) {
				var armored string
				f.sig, armored = expiredSignature(t, f.sums)
				f.keys = []SigningKey{{ASCIIArmor: armored}}
			},
			wantWarning: "expired",
		},
		{
			name: "expired key refused when enforced",
			tweak: func(t *testing.T, f *providerFixture) {
				var armored string
				f.sig, armored = expiredSignature(t, f.sums)
				f.keys = []SigningKey{{ASCIIArmor: armored}}
			},
			policy:  SignaturePolicy{EnforceExpiration: true},
			wantErr: ErrSignature,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newProviderFixture(t, func(f *providerFixture) {
				if tt.tweak != nil {
					tt.tweak(t, f)
				}
			})
			c := f.client(t, WithSignaturePolicy(tt.policy))
			pkg := f.pkg(t, c)
			prov, err := c.VerifyProvenance(t.Context(), pkg)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
				for _, s := range []string{pkg.Provider.Hostname + "/hashicorp/null", "3.2.1", "linux_amd64"} {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not name %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(prov.SHA256SUMS, f.sums) || !bytes.Equal(prov.Signature, f.sig) {
				t.Error("Provenance does not carry the checked bytes")
			}
			if prov.Sums[f.rel.filename] != sha256hex(f.rel.zip) || len(prov.Sums) != 3 {
				t.Errorf("Sums = %v", prov.Sums)
			}
			if prov.Unsigned() != tt.wantUnsigned {
				t.Errorf("Unsigned = %v, want %v", prov.Unsigned(), tt.wantUnsigned)
			}
			if !tt.wantUnsigned && (prov.KeyID == "" || !strings.Contains(prov.SigningKey, "PGP PUBLIC KEY")) {
				t.Errorf("KeyID %q / SigningKey %q not set", prov.KeyID, prov.SigningKey)
			}
			warnings := strings.Join(prov.Warnings, "\n")
			if tt.wantWarning == "" && warnings != "" {
				t.Errorf("unexpected warnings: %s", warnings)
			}
			if tt.wantWarning != "" && !strings.Contains(warnings, tt.wantWarning) {
				t.Errorf("warnings %q lack %q", warnings, tt.wantWarning)
			}
			// No credentials on SHA256SUMS and signature downloads.
			for _, s := range f.rec.all() {
				if strings.HasPrefix(s.Path, "/files/") && s.Auth != "" {
					t.Errorf("%s got Authorization", s.Path)
				}
			}
		})
	}
}

// expiredSignature signs data with a key made three days ago that expired
// after an hour, at a time it was still valid.
func expiredSignature(t *testing.T, data []byte) (sig []byte, armoredKey string) {
	past := time.Now().Add(-72 * time.Hour)
	cfg := keyConfig()
	cfg.Time = func() time.Time { return past }
	cfg.KeyLifetimeSecs = 3600
	e, armored := newKey(t, cfg)
	return detachSign(t, e, data, &packet.Config{Time: func() time.Time { return past.Add(time.Minute) }}), armored
}

// registry.opentofu.org may return no keys: OpenTofu then skips the
// signature with a warning, unless told to enforce it.
func TestVerifyProvenanceNoKeysOnOpenTofuRegistry(t *testing.T) {
	for _, enforce := range []bool{false, true} {
		t.Run(fmt.Sprintf("enforce=%v", enforce), func(t *testing.T) {
			f := newProviderFixture(t, func(f *providerFixture) { f.keys = nil })
			c := testClient(t, f.api, config.DefaultHostname, WithHostServices(map[string]map[string]string{
				config.DefaultHostname: {ProvidersService: f.api.URL + "/v1/providers/"},
			}), WithSignaturePolicy(SignaturePolicy{EnforceValidation: enforce}))
			addr := config.ProviderAddr{Hostname: config.DefaultHostname, Namespace: "hashicorp", Type: "null"}
			pkg, err := c.ProviderDownload(t.Context(), addr, "3.2.1", f.rel.platform)
			if err != nil {
				t.Fatal(err)
			}
			prov, err := c.VerifyProvenance(t.Context(), pkg)
			if enforce {
				if !errors.Is(err, ErrNoSigningKeys) {
					t.Fatalf("error %v, want ErrNoSigningKeys", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !prov.Unsigned() || len(prov.Warnings) != 1 || !strings.Contains(prov.Warnings[0], "not checked") {
				t.Errorf("Unsigned = %v, Warnings = %q", prov.Unsigned(), prov.Warnings)
			}
			if prov.Sums[f.rel.filename] != pkg.SHA256 {
				t.Errorf("Sums = %v", prov.Sums)
			}
		})
	}
	// An empty Hostname means the default registry too.
	f := newProviderFixture(t, nil)
	pkg := &ProviderPackage{Provider: config.ProviderAddr{Namespace: "hashicorp", Type: "null"}, Version: "3.2.1", Platform: f.rel.platform,
		Filename: f.rel.filename, SHA256: sha256hex(f.rel.zip), SHASumsURL: f.files.URL + "/files/terraform-provider-null_3.2.1_SHA256SUMS",
		SHASumsSignatureURL: f.files.URL + "/files/terraform-provider-null_3.2.1_SHA256SUMS.sig"}
	if _, err := f.client(t).VerifyProvenance(t.Context(), pkg); err != nil {
		t.Errorf("empty hostname: %v", err)
	}
}

func TestCheckProvenanceOffline(t *testing.T) {
	rel := newRelease(t)
	prov, err := CheckProvenance(rel.sums, rel.sig, []string{rel.armored}, false, SignaturePolicy{})
	if err != nil {
		t.Fatal(err)
	}
	if err := prov.CheckFile(rel.filename, strings.ToUpper(sha256hex(rel.zip))); err != nil {
		t.Error(err)
	}
	if err := prov.CheckFile(rel.filename, strings.Repeat("0", 64)); !errors.Is(err, ErrChecksumMismatch) {
		t.Errorf("CheckFile wrong hash: %v", err)
	}
	if err := prov.CheckFile("missing.zip", sha256hex(rel.zip)); !errors.Is(err, ErrChecksumMismatch) {
		t.Errorf("CheckFile missing: %v", err)
	}
	if _, err := CheckProvenance(rel.sums, rel.sig, nil, false, SignaturePolicy{}); !errors.Is(err, ErrNoSigningKeys) {
		t.Errorf("no keys: %v", err)
	}
	if p, err := CheckProvenance(rel.sums, nil, nil, true, SignaturePolicy{}); err != nil || !p.Unsigned() {
		t.Errorf("allowUnsigned: %v, %+v", err, p)
	}
	if _, err := CheckProvenance([]byte("garbage\n"), nil, nil, true, SignaturePolicy{}); !errors.Is(err, ErrProtocol) {
		t.Errorf("unsigned garbage sums: %v", err)
	}
}

func TestParseSHA256SUMS(t *testing.T) {
	a, b := strings.Repeat("a", 64), strings.Repeat("B", 64)
	tests := []struct {
		name     string
		in       string
		want     map[string]string
		problems []string // substrings, one per problem
		wantErr  string
	}{
		{"two spaces", a + "  x.zip\n", map[string]string{"x.zip": a}, nil, ""},
		{"binary marker", a + " *x.zip\n", map[string]string{"x.zip": a}, nil, ""},
		{"upper-case hex is lowered, CRLF, blank lines", "\r\n" + b + "  y.zip\r\n\n" + a + "  x.zip", map[string]string{"x.zip": a, "y.zip": strings.ToLower(b)}, nil, ""},
		{"same line twice", a + "  x.zip\n" + a + "  x.zip\n", map[string]string{"x.zip": a}, nil, ""},
		// One bad line does not cost the others their version.
		{"conflicting duplicate: the first counts", a + "  x.zip\n" + strings.ToLower(b) + "  x.zip\n", map[string]string{"x.zip": a}, []string{"line 2: x.zip listed again"}, ""},
		{"short hash among good lines", "abc  y.zip\n" + a + "  x.zip\n", map[string]string{"x.zip": a}, []string{"line 1: too short"}, ""},
		{"non-hex line", a + "  x.zip\n" + strings.Repeat("g", 64) + "  y.zip\n", map[string]string{"x.zip": a}, []string{"line 2: \"ggg"}, ""},
		{"no separator and no name", a + "x.zip\n" + a + "   \n" + a + "  z.zip\n", map[string]string{"z.zip": a}, []string{"line 1: no blank", "line 2: no file name"}, ""},
		{"only bad lines", "abc  x.zip\n", nil, nil, "line 1: too short"},
		{"empty", "", nil, nil, "no checksum lines"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, problems, err := ParseSHA256SUMS([]byte(tt.in))
			if tt.wantErr != "" {
				if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want ErrProtocol naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if len(problems) != len(tt.problems) {
				t.Fatalf("problems %q, want %d naming %q", problems, len(tt.problems), tt.problems)
			}
			for i, p := range tt.problems {
				if !strings.Contains(problems[i], p) {
					t.Errorf("problem %q lacks %q", problems[i], p)
				}
			}
		})
	}
}

func FuzzParseSHA256SUMS(f *testing.F) {
	a := strings.Repeat("a", 64)
	for _, seed := range []string{
		a + "  terraform-provider-null_3.2.1_linux_amd64.zip\n",
		a + " *x.zip\r\n" + strings.Repeat("F", 64) + "\ty y.zip\n",
		"",
		"\n\n",
		a,
		a + "  \n",
		strings.Repeat("0", 63) + "  x\n",
		a + "  x\n" + strings.Repeat("b", 64) + "  x\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sums, _, err := ParseSHA256SUMS(data)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v does not wrap ErrProtocol", err)
			}
			return
		}
		if len(sums) == 0 {
			t.Fatal("success without entries")
		}
		var again bytes.Buffer
		for name, sum := range sums {
			if len(sum) != 64 || strings.ToLower(sum) != sum || strings.Trim(sum, "0123456789abcdef") != "" {
				t.Fatalf("hash %q is not lower-case hex", sum)
			}
			if name == "" || strings.ContainsAny(name, "\n") || strings.TrimRight(name, " \t\r") != name {
				t.Fatalf("bad file name %q", name)
			}
			// The binary-mode form keeps names that start with blanks or "*".
			fmt.Fprintf(&again, "%s *%s\n", sum, name)
		}
		// What we parsed, written back in canonical form, parses the same.
		sums2, problems, err := ParseSHA256SUMS(again.Bytes())
		if err != nil {
			t.Fatalf("canonical form does not parse: %v\n%s", err, again.Bytes())
		}
		if fmt.Sprint(sums2) != fmt.Sprint(sums) || len(problems) != 0 {
			t.Fatalf("round trip changed %v into %v (problems %q)", sums, sums2, problems)
		}
	})
}
