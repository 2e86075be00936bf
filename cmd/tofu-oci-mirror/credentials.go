package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/opentofu/svchost"
	"github.com/zclconf/go-cty/cty"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/spool"
)

// credEnv is what finding credentials reads from the process: the real
// environment in main, a map in tests. The library packages read none of it.
type credEnv struct {
	getenv  func(string) string
	environ []string
	home    string
	goos    string
}

// processCredEnv is the environment of this process.
func processCredEnv() credEnv {
	home := os.Getenv("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	return credEnv{getenv: os.Getenv, environ: os.Environ(), home: home, goos: runtime.GOOS}
}

// upstreamTokens holds registry tokens by host as OpenTofu compares hosts
// (svchost.ForComparison: IDN names in punycode, lower case, with port).
type upstreamTokens struct {
	fromEnv    map[svchost.Hostname]string
	fromConfig map[svchost.Hostname]string
}

// lookup returns the token for host: TF_TOKEN_<host> first, then the CLI
// configuration's credentials blocks, as OpenTofu's CredentialsSource.ForHost.
// host may be in punycode (as plan addresses are) or Unicode.
func (u *upstreamTokens) lookup(host string) string {
	h, err := svchost.ForComparison(svchost.ForDisplay(host))
	if err != nil {
		return ""
	}
	if tok, ok := u.fromEnv[h]; ok {
		return tok
	}
	return u.fromConfig[h]
}

// findUpstreamTokens collects tokens where OpenTofu looks
// (internal/command/cliconfig credentials.go and cliconfig.go):
// TF_TOKEN_<host> variables; credentials "HOST" { token = "..." } blocks in
// the CLI configuration file (TF_CLI_CONFIG_FILE or TERRAFORM_CONFIG, else
// ~/.tofurc, else ~/.terraformrc, else $XDG_CONFIG_HOME/opentofu/tofurc);
// and, unless the file was named by a variable, the *.tfrc and *.tfrc.json
// files of the configuration directory (~/.terraform.d, or
// $XDG_CONFIG_HOME/opentofu when that does not exist), which hold the
// credentials.tfrc.json `tofu login` writes. A later file's entry replaces
// an earlier one's, as OpenTofu's Config.Merge does. Files that cannot be
// read are warned about and skipped; tokens are never logged.
func findUpstreamTokens(env credEnv, logger *slog.Logger) *upstreamTokens {
	u := &upstreamTokens{fromEnv: envTokens(env.environ), fromConfig: map[svchost.Hostname]string{}}
	var files []string
	override := env.getenv("TF_CLI_CONFIG_FILE")
	if override == "" {
		override = env.getenv("TERRAFORM_CONFIG")
	}
	if override != "" {
		if _, err := os.Stat(override); err != nil {
			logger.Warn("the CLI configuration file named by TF_CLI_CONFIG_FILE cannot be read; no credentials blocks used", "file", override, "error", err)
		} else {
			files = append(files, override)
		}
	} else {
		if f := cliConfigFile(env); f != "" {
			files = append(files, f)
		}
		files = append(files, configDirFiles(env)...)
	}
	for _, f := range files {
		creds, err := readCredentialsBlocks(f)
		if err != nil {
			logger.Warn("cannot read credentials from a CLI configuration file; it is skipped", "file", f, "error", err)
			continue
		}
		for h, tok := range creds {
			u.fromConfig[h] = tok
		}
		if len(creds) > 0 {
			logger.Debug("upstream credentials found", "file", f, "hosts", hostList(creds))
		}
	}
	if len(u.fromEnv) > 0 {
		logger.Debug("upstream credentials found", "source", "TF_TOKEN_*", "hosts", hostList(u.fromEnv))
	}
	return u
}

// envTokens reads TF_TOKEN_<host> as OpenTofu's collectCredentialsFromEnv:
// "__" means "-", "_" means ".", the name may be an IDN in Unicode or
// punycode, and letter case does not matter.
func envTokens(environ []string) map[svchost.Hostname]string {
	out := map[svchost.Hostname]string{}
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		raw, isToken := strings.CutPrefix(name, "TF_TOKEN_")
		if !ok || !isToken {
			continue
		}
		raw = strings.ReplaceAll(raw, "__", "-")
		raw = strings.ReplaceAll(raw, "_", ".")
		h, err := svchost.ForComparison(svchost.ForDisplay(raw))
		if err != nil {
			continue
		}
		out[h] = value
	}
	return out
}

// cliConfigFile is OpenTofu's default CLI configuration file on Unix:
// ~/.tofurc, else ~/.terraformrc, else (neither existing, XDG_CONFIG_HOME
// set) $XDG_CONFIG_HOME/opentofu/tofurc. "" when none exists.
func cliConfigFile(env credEnv) string {
	tofurc := filepath.Join(env.home, ".tofurc")
	legacy := filepath.Join(env.home, ".terraformrc")
	candidates := []string{tofurc, legacy}
	if xdg := env.getenv("XDG_CONFIG_HOME"); xdg != "" {
		candidates = append(candidates, filepath.Join(xdg, "opentofu", "tofurc"))
	}
	for _, c := range candidates {
		if isFile(c) {
			return c
		}
	}
	return ""
}

// configDirFiles lists the *.tfrc and *.tfrc.json files of OpenTofu's CLI
// configuration directory, in name order.
func configDirFiles(env credEnv) []string {
	dir := filepath.Join(env.home, ".terraform.d")
	if xdg := env.getenv("XDG_CONFIG_HOME"); xdg != "" && !isDir(dir) {
		dir = filepath.Join(xdg, "opentofu")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if n := e.Name(); !e.IsDir() && (strings.HasSuffix(n, ".tfrc") || strings.HasSuffix(n, ".tfrc.json")) {
			out = append(out, filepath.Join(dir, n))
		}
	}
	sort.Strings(out)
	return out
}

// credentialsSchema picks the credentials blocks out of a CLI configuration
// and ignores everything else in it.
var credentialsSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "credentials", LabelNames: []string{"host"}}}}

// readCredentialsBlocks returns the token of every credentials "HOST" block
// in path (HCL, or JSON for *.json). A block without a token attribute is no
// credential, as in OpenTofu; a token that is not a string is an error
// naming the file and line.
func readCredentialsBlocks(path string) (map[svchost.Hostname]string, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p := hclparse.NewParser()
	var f *hcl.File
	var diags hcl.Diagnostics
	if strings.HasSuffix(path, ".json") {
		f, diags = p.ParseJSON(src, path)
	} else {
		f, diags = p.ParseHCL(src, path)
	}
	if diags.HasErrors() {
		return nil, diags
	}
	content, _, diags := f.Body.PartialContent(credentialsSchema)
	if diags.HasErrors() {
		return nil, diags
	}
	out := map[svchost.Hostname]string{}
	for _, b := range content.Blocks {
		host, err := svchost.ForComparison(b.Labels[0])
		if err != nil {
			continue // OpenTofu skips invalid hostnames too
		}
		attrs, diags := b.Body.JustAttributes()
		if diags.HasErrors() {
			return nil, diags
		}
		attr, ok := attrs["token"]
		if !ok {
			continue
		}
		v, diags := attr.Expr.Value(nil)
		if diags.HasErrors() {
			return nil, diags
		}
		if v.IsNull() || !v.IsKnown() || v.Type() != cty.String {
			return nil, fmt.Errorf("%s: credentials %q: token must be a string", attr.Range.String(), b.Labels[0])
		}
		out[host] = v.AsString()
	}
	return out, nil
}

func hostList[V any](m map[svchost.Hostname]V) string {
	var hosts []string
	for h := range m {
		hosts = append(hosts, h.ForDisplay())
	}
	slices.Sort(hosts)
	return strings.Join(hosts, ",")
}

// registryAuthFiles returns the Docker-style auth files that exist, highest
// priority first: REGISTRY_AUTH_FILE (Podman's override), then OpenTofu's
// search list (ociauthconfig dockerCLIStyleAuthFileSearchLocations):
// $XDG_RUNTIME_DIR/containers/auth.json on Linux (~/.config/containers/
// auth.json on macOS and Windows), $XDG_CONFIG_HOME (default ~/.config)
// /containers/auth.json, then $DOCKER_CONFIG/config.json (Docker's own
// override, which OpenTofu ignores) and ~/.docker/config.json.
func registryAuthFiles(env credEnv) []string {
	var candidates []string
	if f := env.getenv("REGISTRY_AUTH_FILE"); f != "" {
		candidates = append(candidates, f)
	}
	switch env.goos {
	case "linux":
		if run := env.getenv("XDG_RUNTIME_DIR"); run != "" {
			candidates = append(candidates, filepath.Join(run, "containers", "auth.json"))
		}
	case "darwin", "windows":
		candidates = append(candidates, filepath.Join(env.home, ".config", "containers", "auth.json"))
	}
	xdgConfig := env.getenv("XDG_CONFIG_HOME")
	if xdgConfig == "" {
		xdgConfig = filepath.Join(env.home, ".config")
	}
	candidates = append(candidates, filepath.Join(xdgConfig, "containers", "auth.json"))
	if d := env.getenv("DOCKER_CONFIG"); d != "" {
		candidates = append(candidates, filepath.Join(d, "config.json"))
	}
	candidates = append(candidates, filepath.Join(env.home, ".docker", "config.json"))
	var out []string
	for _, c := range candidates {
		if isFile(c) && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// systemCABundles are where Linux distributions keep the system roots as
// one PEM file (Go's crypto/x509 looks in the same places).
var systemCABundles = []string{
	"/etc/ssl/certs/ca-certificates.crt",
	"/etc/pki/tls/certs/ca-bundle.crt",
	"/etc/ssl/ca-bundle.pem",
	"/etc/pki/tls/cacert.pem",
	"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
	"/etc/ssl/cert.pem",
}

// gitCABundle returns the CA file git must trust so that git sources see the
// roots our HTTPS client trusts: "" (git's default) when neither
// upstream.ca_file nor SSL_CERT_FILE is set; SSL_CERT_FILE alone as it is;
// with caFile, a new file holding the base roots (SSL_CERT_FILE, or the
// system bundle) followed by caFile, alone in a spool work directory under
// dir: the caller removes that directory (filepath.Dir of the result), and
// the next run's spool cleanup removes what a killed run left.
func gitCABundle(env credEnv, caFile, dir string) (string, error) {
	base := env.getenv("SSL_CERT_FILE")
	if caFile == "" {
		return base, nil
	}
	if base == "" {
		for _, b := range systemCABundles {
			if isFile(b) {
				base = b
				break
			}
		}
	}
	wd, err := spool.WorkDir(dir, "git-ca")
	if err != nil {
		return "", fmt.Errorf("git CA bundle: %w", err)
	}
	fail := func(err error) (string, error) {
		os.RemoveAll(wd)
		return "", fmt.Errorf("git CA bundle: %w", err)
	}
	out, err := os.Create(filepath.Join(wd, "ca-bundle.pem"))
	if err != nil {
		return fail(err)
	}
	defer out.Close()
	for _, src := range []string{base, caFile} {
		if src == "" {
			continue
		}
		if err := appendFile(out, src); err != nil {
			return fail(err)
		}
	}
	if err := out.Close(); err != nil {
		return fail(err)
	}
	return out.Name(), nil
}

func appendFile(w io.Writer, path string) error {
	in, err := os.Open(path)
	if err != nil {
		return err
	}
	defer in.Close()
	if _, err := io.Copy(w, in); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	_, err = io.WriteString(w, "\n")
	return err
}

func isFile(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	return err == nil && fi.IsDir()
}
