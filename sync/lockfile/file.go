package lockfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/apparentlymart/go-versions/versions"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
)

// FileName is the lock file OpenTofu reads in a configuration directory.
const FileName = ".terraform.lock.hcl"

// Provider is one provider block of a lock file.
type Provider struct {
	// Address is the normalised "hostname/namespace/type".
	Address string
	// Version is the selected version, normalised.
	Version versions.Version
	// Constraints is the recorded constraint set; nil when none.
	Constraints Constraints
	// Hashes are "h1:..." and "zh:..." strings, sorted and unique; nil
	// when the block has none.
	Hashes []string
}

// File is a parsed lock file. The zero value is an empty one.
type File struct {
	// Providers maps Address to its block.
	Providers map[string]*Provider
}

// Read parses the lock file at path; a file that does not exist is an
// empty File. Errors name the file and line and wrap [ErrSyntax].
func Read(path string) (*File, error) {
	src, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &File{Providers: map[string]*Provider{}}, nil
	}
	if err != nil {
		return nil, err
	}
	return Parse(src, path)
}

// Parse reads lock file bytes as OpenTofu does; filename is used in
// messages. Module blocks (which OpenTofu ignores with a warning) are
// ignored; everything OpenTofu refuses is refused.
func Parse(src []byte, filename string) (*File, error) {
	f, diags := hclparse.NewParser().ParseHCL(src, filename)
	if diags.HasErrors() {
		return nil, fmt.Errorf("%w: %s", ErrSyntax, diags.Error())
	}
	content, diags := f.Body.Content(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
		{Type: "provider", LabelNames: []string{"source_addr"}},
		{Type: "module", LabelNames: []string{"path"}},
	}})
	if diags.HasErrors() {
		return nil, fmt.Errorf("%w: %s", ErrSyntax, diags.Error())
	}
	out := &File{Providers: map[string]*Provider{}}
	var errs []error
	for _, b := range content.Blocks {
		if b.Type != "provider" {
			continue
		}
		p, err := decodeProvider(b)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := out.Providers[p.Address]; dup {
			errs = append(errs, fmt.Errorf("%w: %s: duplicate lock for provider %s", ErrSyntax, b.DefRange, p.Address))
			continue
		}
		out.Providers[p.Address] = p
	}
	return out, errors.Join(errs...)
}

func decodeProvider(b *hcl.Block) (*Provider, error) {
	at := b.DefRange.String()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrSyntax, at, fmt.Sprintf(format, args...))
	}
	raw := b.Labels[0]
	addr, err := config.ParseProviderAddr(raw)
	if err != nil {
		return nil, bad("%v", err)
	}
	if addr.String() != raw {
		return nil, bad("provider address must be written %q, fully qualified and normalised", addr.String())
	}
	attrs, diags := b.Body.Content(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "version", Required: true}, {Name: "constraints"}, {Name: "hashes"},
	}})
	if diags.HasErrors() {
		return nil, fmt.Errorf("%w: %s", ErrSyntax, diags.Error())
	}
	p := &Provider{Address: raw}
	var s string
	if d := gohcl.DecodeExpression(attrs.Attributes["version"].Expr, nil, &s); d.HasErrors() {
		return nil, fmt.Errorf("%w: %s", ErrSyntax, d.Error())
	}
	if p.Version, err = versions.ParseVersion(s); err != nil {
		return nil, bad("provider %s: version %q: %v", raw, s, err)
	}
	if p.Version.String() != s {
		return nil, bad("provider %s: version must be written %q", raw, p.Version.String())
	}
	if a := attrs.Attributes["constraints"]; a != nil {
		if d := gohcl.DecodeExpression(a.Expr, nil, &s); d.HasErrors() {
			return nil, fmt.Errorf("%w: %s", ErrSyntax, d.Error())
		}
		if p.Constraints, err = ParseConstraints(s); err != nil {
			return nil, bad("provider %s: constraints: %v", raw, err)
		}
		if n := ConstraintsString(p.Constraints); n != s {
			return nil, bad("provider %s: constraints must be written %q", raw, n)
		}
	}
	if a := attrs.Attributes["hashes"]; a != nil {
		exprs, d := hcl.ExprList(a.Expr)
		if d.HasErrors() {
			return nil, fmt.Errorf("%w: %s", ErrSyntax, d.Error())
		}
		if len(exprs) == 0 {
			return nil, bad("provider %s: hashes must be omitted or list at least one hash", raw)
		}
		for _, e := range exprs {
			if d := gohcl.DecodeExpression(e, nil, &s); d.HasErrors() {
				return nil, fmt.Errorf("%w: %s", ErrSyntax, d.Error())
			}
			if scheme, value, ok := strings.Cut(s, ":"); !ok || scheme == "" || value == "" {
				return nil, bad("provider %s: %q is not a hash (want SCHEME:VALUE)", raw, s)
			}
			p.Hashes = append(p.Hashes, s)
		}
		p.Hashes = sortedUnique(p.Hashes)
	}
	return p, nil
}

// sortedUnique sorts hashes lexically and drops duplicates, as OpenTofu
// normalises a provider's hash set.
func sortedUnique(hashes []string) []string {
	out := slices.Clone(hashes)
	slices.Sort(out)
	return slices.Compact(out)
}

// Bytes renders the file exactly as OpenTofu writes it (hclwrite): its
// two comment lines, then one block per provider ordered by hostname,
// namespace and type, each with version, constraints (when any) and one
// hash per line.
func (f *File) Bytes() []byte {
	out := hclwrite.NewEmptyFile()
	body := out.Body()
	body.AppendUnstructuredTokens(hclwrite.Tokens{
		{Type: hclsyntax.TokenComment, Bytes: []byte("# This file is maintained automatically by \"tofu init\".\n")},
		{Type: hclsyntax.TokenComment, Bytes: []byte("# Manual edits may be lost in future updates.\n")},
	})
	keys := make([]string, 0, len(f.Providers))
	for a := range f.Providers {
		keys = append(keys, a)
	}
	// Part by part, as OpenTofu's Provider.LessThan compares.
	sort.Slice(keys, func(i, j int) bool {
		return slices.Compare(strings.SplitN(keys[i], "/", 3), strings.SplitN(keys[j], "/", 3)) < 0
	})
	for _, a := range keys {
		p := f.Providers[a]
		body.AppendNewline()
		blk := body.AppendNewBlock("provider", []string{p.Address}).Body()
		blk.SetAttributeValue("version", cty.StringVal(p.Version.String()))
		if c := ConstraintsString(p.Constraints); c != "" {
			blk.SetAttributeValue("constraints", cty.StringVal(c))
		}
		if len(p.Hashes) > 0 {
			blk.SetAttributeRaw("hashes", hashTokens(p.Hashes))
		}
	}
	return out.Bytes()
}

// hashTokens is a list with one hash per line and a trailing comma, as
// OpenTofu writes it.
func hashTokens(hashes []string) hclwrite.Tokens {
	toks := hclwrite.Tokens{
		{Type: hclsyntax.TokenOBrack, Bytes: []byte("[")},
		{Type: hclsyntax.TokenNewline, Bytes: []byte("\n")},
	}
	for _, h := range hashes {
		toks = append(toks, hclwrite.TokensForValue(cty.StringVal(h))...)
		toks = append(toks,
			&hclwrite.Token{Type: hclsyntax.TokenComma, Bytes: []byte(",")},
			&hclwrite.Token{Type: hclsyntax.TokenNewline, Bytes: []byte("\n")})
	}
	return append(toks, &hclwrite.Token{Type: hclsyntax.TokenCBrack, Bytes: []byte("]")})
}

// WriteFile replaces path with data atomically: a temporary file in the
// same directory, fsynced, renamed over path, then the directory fsynced,
// so a crash leaves the old file or the new one, never a mix. The file
// gets mode 0644, as OpenTofu gives it.
func WriteFile(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	defer d.Close()
	if err = d.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}
