package testregistry

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry/testca"
)

// Token auth as Harbor, GHCR, GitLab, Quay and Docker Hub do it: the
// registry answers 401 with a Bearer challenge naming a realm, a service and
// the scope it needs ("repository:NAME:pull,push"); the client asks the
// realm for a token, with Basic credentials or none, and the token server
// grants per repository only the actions that account may do. Distribution
// checks the JWT itself (configuration auth.token: realm, service, issuer,
// jwks), so the registry half here is the real one; only the issuer is
// written for tests. The protocol: distribution's docs/spec/auth/token.md
// and jwt.md.

// Grant allows Actions ("pull", "push", "delete" or "*" for all) on the
// repositories Repository names: an exact name, or a prefix ending in "*"
// ("providers/*", or "*" for every repository).
type Grant struct {
	Repository string
	Actions    []string
}

// TokenUser is an account of the test token issuer, like a line of an
// htpasswd file plus that user's permissions. A user without Grants can log
// in and gets tokens with no access.
type TokenUser struct {
	Name, Password string
	Grants         []Grant
}

type tokenAuth struct {
	users        []TokenUser
	anonymous    []Grant
	anonymousSet bool
}

// WithTokenAuth protects the registry with token auth (distribution's
// auth.token access controller) and starts a token issuer for these users
// (Registry.Issuer), over TLS when the registry has WithTLS. Anonymous
// clients get pull on every repository unless WithAnonymousGrants says
// otherwise, which is what OpenTofu needs to install without credentials.
// Only the distribution implementation supports it.
func WithTokenAuth(users ...TokenUser) Option {
	return func(o *options) {
		if o.token == nil {
			o.token = &tokenAuth{}
		}
		o.token.users = append(o.token.users, users...)
	}
}

// WithAnonymousGrants replaces the anonymous pull-everything default of
// WithTokenAuth; no grants means anonymous clients get tokens without any
// access.
func WithAnonymousGrants(grants ...Grant) Option {
	return func(o *options) {
		if o.token == nil {
			o.token = &tokenAuth{}
		}
		o.token.anonymous = grants
		o.token.anonymousSet = true
	}
}

// IssuedToken records one token the issuer handed out: to whom ("" for an
// anonymous client) and what it allows.
type IssuedToken struct {
	User   string
	Access []TokenAccess
}

// TokenAccess is one entry of a token's access claim.
type TokenAccess struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// TokenIssuer is the token server of a registry made WithTokenAuth. It
// signs ES256 JWTs with a key made for the test; the registry trusts it
// through a JWKS file naming the key id.
type TokenIssuer struct {
	// URL is the realm: "https://127.0.0.1:PORT/token" (http without TLS).
	URL string
	// Service is the audience the registry expects ("testregistry").
	Service string
	// Name is the issuer claim the registry expects.
	Name string

	auth     *tokenAuth
	key      *ecdsa.PrivateKey
	kid      string
	jwksPath string

	mu     sync.Mutex
	issued []IssuedToken
	denied int
}

func newTokenIssuer(t testing.TB, ca *testca.CA, auth *tokenAuth) *TokenIssuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testregistry: token signing key: %v", err)
	}
	if !auth.anonymousSet {
		auth.anonymous = []Grant{{Repository: "*", Actions: []string{"pull"}}}
	}
	ti := &TokenIssuer{Service: "testregistry", Name: "testregistry-issuer", auth: auth, key: key, kid: "testregistry-key-1"}
	ti.jwksPath = ti.writeJWKS(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testregistry: token issuer listening: %v", err)
	}
	scheme := "http"
	if ca != nil {
		ln = tlsListener(ln, ca.ServerTLSConfig(t))
		scheme = "https"
	}
	ti.URL = scheme + "://" + ln.Addr().String() + "/token"
	srv := &http.Server{Handler: http.HandlerFunc(ti.serveToken), ReadHeaderTimeout: 10 * time.Second, ErrorLog: serverErrorLog()}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ti
}

func (ti *TokenIssuer) writeJWKS(t testing.TB) string {
	t.Helper()
	pad := func(n *big.Int) string {
		b := make([]byte, 32)
		n.FillBytes(b)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	jwks := map[string]any{"keys": []map[string]string{{
		"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": ti.kid,
		"x": pad(ti.key.X), "y": pad(ti.key.Y),
	}}}
	b, err := json.Marshal(jwks)
	if err != nil {
		t.Fatalf("testregistry: jwks: %v", err)
	}
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatalf("testregistry: writing %s: %v", path, err)
	}
	return path
}

// registryAuthParameters is distribution's auth.token configuration.
func (ti *TokenIssuer) registryAuthParameters() map[string]any {
	return map[string]any{
		"realm":   ti.URL,
		"service": ti.Service,
		"issuer":  ti.Name,
		"jwks":    ti.jwksPath,
	}
}

// Issued returns every token handed out so far, oldest first.
func (ti *TokenIssuer) Issued() []IssuedToken {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	return slices.Clone(ti.issued)
}

// Denied counts token requests refused for wrong credentials.
func (ti *TokenIssuer) Denied() int {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	return ti.denied
}

// serveToken answers GET (docker token protocol) and POST (its OAuth2
// password grant form) token requests.
func (ti *TokenIssuer) serveToken(w http.ResponseWriter, req *http.Request) {
	var user, pass string
	var hasCreds bool
	var scopes []string
	switch req.Method {
	case http.MethodGet:
		user, pass, hasCreds = req.BasicAuth()
		for _, s := range req.URL.Query()["scope"] {
			scopes = append(scopes, strings.Fields(s)...)
		}
	case http.MethodPost:
		if err := req.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if req.PostForm.Get("grant_type") == "password" {
			user, pass, hasCreds = req.PostForm.Get("username"), req.PostForm.Get("password"), true
		} else if u, p, ok := req.BasicAuth(); ok {
			user, pass, hasCreds = u, p, true
		}
		scopes = strings.Fields(req.PostForm.Get("scope"))
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	grants := ti.auth.anonymous
	if hasCreds {
		u, ok := ti.login(user, pass)
		if !ok {
			ti.mu.Lock()
			ti.denied++
			ti.mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = fmt.Fprintf(w, `{"errors":[{"code":"UNAUTHORIZED","message":"invalid username or password for %q"}]}`, user)
			return
		}
		grants = u.Grants
	}
	access := grantedAccess(grants, scopes)
	tok, err := ti.sign(user, access)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	ti.mu.Lock()
	ti.issued = append(ti.issued, IssuedToken{User: user, Access: access})
	ti.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"token": tok, "access_token": tok, "expires_in": 300,
		"issued_at": time.Now().UTC().Format(time.RFC3339),
	})
}

func (ti *TokenIssuer) login(user, pass string) (TokenUser, bool) {
	for _, u := range ti.auth.users {
		if u.Name == user && subtle.ConstantTimeCompare([]byte(u.Password), []byte(pass)) == 1 {
			return u, true
		}
	}
	return TokenUser{}, false
}

// grantedAccess intersects the requested scopes with the grants: a scope
// asking for pull,push on a repository the user may only pull gets pull.
func grantedAccess(grants []Grant, scopes []string) []TokenAccess {
	var out []TokenAccess
	for _, s := range scopes {
		typ, rest, ok := strings.Cut(s, ":")
		i := strings.LastIndex(rest, ":")
		if !ok || i < 0 || typ != "repository" {
			continue
		}
		name, actions := rest[:i], strings.Split(rest[i+1:], ",")
		var allowed []string
		for _, a := range actions {
			if grantsAction(grants, name, a) && !slices.Contains(allowed, a) {
				allowed = append(allowed, a)
			}
		}
		if len(allowed) > 0 {
			out = append(out, TokenAccess{Type: typ, Name: name, Actions: allowed})
		}
	}
	return out
}

func grantsAction(grants []Grant, repo, action string) bool {
	for _, g := range grants {
		match := g.Repository == repo
		if p, ok := strings.CutSuffix(g.Repository, "*"); ok && strings.HasPrefix(repo, p) {
			match = true
		}
		if match && (slices.Contains(g.Actions, action) || slices.Contains(g.Actions, "*")) {
			return true
		}
	}
	return false
}

// sign makes a compact JWS (ES256) with the claims distribution checks:
// issuer, audience, validity and the access list.
func (ti *TokenIssuer) sign(subject string, access []TokenAccess) (string, error) {
	now := time.Now()
	jti := make([]byte, 12)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	if access == nil {
		access = []TokenAccess{}
	}
	header, err := json.Marshal(map[string]string{"alg": "ES256", "typ": "JWT", "kid": ti.kid})
	if err != nil {
		return "", err
	}
	claims, err := json.Marshal(map[string]any{
		"iss": ti.Name, "sub": subject, "aud": ti.Service,
		"exp": now.Add(5 * time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix(),
		"jti": base64.RawURLEncoding.EncodeToString(jti), "access": access,
	})
	if err != nil {
		return "", err
	}
	input := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(claims)
	sum := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, ti.key, sum[:])
	if err != nil {
		return "", err
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// DockerConfigFor writes a Docker config.json with user/pass for Host in a
// t.TempDir() and returns its path: for a registry made WithTokenAuth, whose
// users DockerConfig cannot choose between.
func (r *Registry) DockerConfigFor(t testing.TB, user, pass string) string {
	t.Helper()
	if user == "" {
		t.Fatal("testregistry: DockerConfigFor needs a user")
	}
	return writeDockerConfig(t, r.Host, user, pass)
}
