package modsource

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	hcljson "github.com/hashicorp/hcl/v2/json"
	"github.com/zclconf/go-cty/cty"
)

// Rewrite is one module block whose registry source was replaced.
type Rewrite struct {
	// File is the slash-separated path inside the package, Line the line
	// of the source attribute.
	File string
	Line int
	// Module is the block's label.
	Module string
	// Address is the registry module, "HOST/NAMESPACE/NAME/SYSTEM".
	Address string
	// Constraint is the block's version argument, "" when it had none.
	Constraint string
	// From is the source as written, To the oci:// source written instead.
	From, To string
}

// Problem is a registry source RewriteRegistrySources could not rewrite
// (a .tf.json file, a source or version that is not a literal string, a
// file HCL cannot parse, an address resolve refused), or a module block
// whose git, http or other remote source tofu init would fetch from
// outside the air gap.
type Problem struct {
	// File is the slash-separated path inside the package; Line is 0 when
	// the problem is the whole file.
	File    string
	Line    int
	Message string
}

// Error renders FILE:LINE: MESSAGE.
func (p Problem) Error() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Message)
	}
	return p.File + ": " + p.Message
}

// ResolveFunc returns the oci:// source (oci://REGISTRY/REPOSITORY?tag=TAG,
// without a //subdir) of the mirrored copy of the registry module addr
// ("HOST/NAMESPACE/NAME/SYSTEM") at the newest mirrored version meeting
// constraint ("" means any).
type ResolveFunc func(addr, constraint string) (ociSource string, err error)

// RewriteRegistrySources rewrites, in the .tf and .tofu files under dir
// (not .git, not through symlinks), every top-level module block whose
// source is a registry address ([RegistryAddress]): source becomes the
// oci:// source resolve returns for the address and the block's version
// constraint, keeping any //subdir, and the version argument's line is
// removed (OpenTofu refuses version on oci:// sources). The new string is
// rendered by hclwrite and spliced over the old one, so every other byte
// of the file (formatting, comments) survives; files are rewritten in
// place with their modes kept, and unchanged files are not written.
//
// What cannot be rewritten is reported, per file and line, as a Problem
// and left as it was: module blocks in .tf.json files, sources or versions
// that are not literal strings, files that do not parse, and addresses
// resolve fails for. The error is for I/O failures only. Rewrites and
// problems come in file and line order.
func RewriteRegistrySources(dir string, resolve ResolveFunc) ([]Rewrite, []Problem, error) {
	var rewrites []Rewrite
	var problems []Problem
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		name := d.Name()
		isJSON := strings.HasSuffix(name, ".tf.json") || strings.HasSuffix(name, ".tofu.json")
		if !d.Type().IsRegular() || !(isJSON || strings.HasSuffix(name, ".tf") || strings.HasSuffix(name, ".tofu")) {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Size() > maxScanFile {
			problems = append(problems, Problem{File: rel, Message: fmt.Sprintf("larger than %d bytes, not scanned for module sources", maxScanFile)})
			return nil
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if isJSON {
			problems = append(problems, jsonModuleProblems(rel, src)...)
			return nil
		}
		out, rw, pr := rewriteFile(rel, src, resolve)
		rewrites, problems = append(rewrites, rw...), append(problems, pr...)
		if len(rw) == 0 || bytes.Equal(out, src) {
			return nil
		}
		return os.WriteFile(p, out, info.Mode().Perm())
	})
	if err != nil {
		return rewrites, problems, fmt.Errorf("rewriting module sources under %s: %w", dir, err)
	}
	sort.SliceStable(problems, func(i, j int) bool {
		if problems[i].File != problems[j].File {
			return problems[i].File < problems[j].File
		}
		return problems[i].Line < problems[j].Line
	})
	return rewrites, problems, nil
}

// rewriteFile rewrites one native-syntax file. hclsyntax finds the blocks,
// values and byte ranges; each edit splices hclwrite's rendering of the
// new source string over the old expression and cuts the version
// argument's line, so every other byte (alignment, comments, blank lines)
// stays as written: re-printing the whole file through hclwrite would
// realign attributes and comments the author laid out.
func rewriteFile(file string, src []byte, resolve ResolveFunc) ([]byte, []Rewrite, []Problem) {
	parsed, diags := hclsyntax.ParseConfig(src, file, hcl.InitialPos)
	if diags.HasErrors() {
		if !moduleBlockRe.Match(src) {
			return src, nil, nil
		}
		return src, nil, []Problem{{File: file, Message: "cannot parse (" + diags.Error() + "); its module blocks were not rewritten"}}
	}
	body := parsed.Body.(*hclsyntax.Body)
	var rewrites []Rewrite
	var problems []Problem
	var edits []edit
	for _, b := range body.Blocks {
		if b.Type != "module" || len(b.Labels) != 1 {
			continue
		}
		rw, ed, pr := rewriteBlock(file, src, b, resolve)
		if pr != nil {
			problems = append(problems, *pr)
		}
		if rw != nil {
			rewrites = append(rewrites, *rw)
			edits = append(edits, ed...)
		}
	}
	if len(edits) == 0 {
		return src, nil, problems
	}
	out := applyEdits(src, edits)
	if _, diags := hclsyntax.ParseConfig(out, file, hcl.InitialPos); diags.HasErrors() {
		return src, nil, append(problems, Problem{File: file, Message: "rewriting would break it (" + diags.Error() + "); left as it was"})
	}
	return out, rewrites, problems
}

// edit replaces src[start:end] with text.
type edit struct {
	start, end int
	text       []byte
}

// applyEdits applies non-overlapping edits.
func applyEdits(src []byte, edits []edit) []byte {
	sort.Slice(edits, func(i, j int) bool { return edits[i].start < edits[j].start })
	var out bytes.Buffer
	at := 0
	for _, e := range edits {
		out.Write(src[at:e.start])
		out.Write(e.text)
		at = e.end
	}
	out.Write(src[at:])
	return out.Bytes()
}

// lineCut is the edit removing the attribute in r: its whole line (with
// a trailing comment and the newline) when nothing else is on it, else
// just its bytes.
func lineCut(src []byte, r hcl.Range) edit {
	start, end := r.Start.Byte, r.End.Byte
	ls := bytes.LastIndexByte(src[:start], '\n') + 1
	if len(bytes.TrimSpace(src[ls:start])) != 0 {
		return edit{start: start, end: end}
	}
	le := bytes.IndexByte(src[end:], '\n')
	if le < 0 {
		le = len(src) - end
	} else {
		le++
	}
	rest := bytes.TrimSpace(src[end : end+le])
	if len(rest) != 0 && !bytes.HasPrefix(rest, []byte("#")) && !bytes.HasPrefix(rest, []byte("//")) {
		return edit{start: start, end: end}
	}
	return edit{start: ls, end: end + le}
}

// moduleBlockRe finds what looks like a module block in a file that does
// not parse, so only such files are reported.
var moduleBlockRe = regexp.MustCompile(`(?m)^\s*module\s+("[^"]*"|[A-Za-z_][A-Za-z0-9_-]*)\s*\{`)

// rewriteBlock plans the edits of one module block, or says why not; all
// nil means the block's source is not a registry address.
func rewriteBlock(file string, src []byte, b *hclsyntax.Block, resolve ResolveFunc) (*Rewrite, []edit, *Problem) {
	attr, ok := b.Body.Attributes["source"]
	if !ok {
		return nil, nil, nil
	}
	line := attr.SrcRange.Start.Line
	source, ok := literalString(attr.Expr)
	if !ok {
		return nil, nil, &Problem{File: file, Line: line, Message: fmt.Sprintf("module %q: source is not a literal string, so a registry address in it cannot be rewritten", b.Labels[0])}
	}
	addr, ok := RegistryAddress(source)
	if !ok {
		if outside(source) {
			return nil, nil, &Problem{File: file, Line: line, Message: fmt.Sprintf("module %q: source %q is fetched from outside the air gap by tofu init; only registry sources are mirrored and rewritten", b.Labels[0], Redact(source))}
		}
		return nil, nil, nil
	}
	constraint := ""
	version, hasVersion := b.Body.Attributes["version"]
	if hasVersion {
		if constraint, ok = literalString(version.Expr); !ok {
			return nil, nil, &Problem{File: file, Line: version.SrcRange.Start.Line, Message: fmt.Sprintf("module %q: version is not a literal string", b.Labels[0])}
		}
	}
	oci, err := resolve(addr.String(), constraint)
	if err != nil {
		return nil, nil, &Problem{File: file, Line: line, Message: fmt.Sprintf("module %q: %s: %v", b.Labels[0], source, err)}
	}
	to := withSubdir(oci, registrySubdir(source))
	r := attr.Expr.Range()
	edits := []edit{{start: r.Start.Byte, end: r.End.Byte, text: hclwrite.TokensForValue(cty.StringVal(to)).Bytes()}}
	if hasVersion {
		edits = append(edits, lineCut(src, version.SrcRange))
	}
	return &Rewrite{File: file, Line: line, Module: b.Labels[0], Address: addr.String(), Constraint: constraint, From: source, To: to}, edits, nil
}

// outside reports whether a module source that is not a registry address
// names a remote package (git, http, the github.com shorthand, s3, ...)
// rather than a local path or an oci:// copy.
func outside(source string) bool {
	s := strings.TrimSpace(source)
	switch {
	case s == "", strings.HasPrefix(s, "./"), strings.HasPrefix(s, "../"), strings.HasPrefix(s, "/"), strings.HasPrefix(s, "oci://"):
		return false
	}
	return true
}

// literalString is the value of a string expression without variables or
// function calls (what OpenTofu requires of source and version).
func literalString(expr hclsyntax.Expression) (string, bool) {
	if len(expr.Variables()) > 0 {
		return "", false
	}
	if _, isCall := expr.(*hclsyntax.FunctionCallExpr); isCall {
		return "", false
	}
	v, diags := expr.Value(nil)
	if diags.HasErrors() || !v.IsKnown() || v.IsNull() || v.Type() != cty.String {
		return "", false
	}
	return v.AsString(), true
}

// registrySubdir is the //subdir of a registry source, "" when none.
func registrySubdir(source string) string {
	if i := strings.Index(source, "//"); i >= 0 {
		return strings.Trim(source[i+2:], "/")
	}
	return ""
}

// withSubdir puts //subdir before the query of an oci:// source, where
// OpenTofu looks for it, after the source's own //subdir if it has one
// (a dependency whose registry location named a subdirectory).
func withSubdir(oci, subdir string) string {
	if subdir == "" {
		return oci
	}
	base, query, hasQuery := strings.Cut(oci, "?")
	if _, after, ok := strings.Cut(base, "://"); ok && strings.Contains(after, "//") {
		base += "/" + subdir // the copy's own //subdir comes first
	} else {
		base += "//" + subdir
	}
	if hasQuery {
		return base + "?" + query
	}
	return base
}

// jsonModuleProblems reports the registry sources of module blocks in a
// JSON-syntax file, which hclwrite cannot edit.
func jsonModuleProblems(file string, src []byte) []Problem {
	f, diags := hcljson.Parse(src, file)
	if diags.HasErrors() {
		return nil // OpenTofu would refuse the file; nothing to rewrite
	}
	content, _, _ := f.Body.PartialContent(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "module", LabelNames: []string{"name"}}}})
	var out []Problem
	for _, b := range content.Blocks {
		attrs, _ := b.Body.JustAttributes()
		a, ok := attrs["source"]
		if !ok {
			continue
		}
		v, diags := a.Expr.Value(nil)
		if diags.HasErrors() || v.Type() != cty.String || v.IsNull() {
			continue
		}
		if _, ok := RegistryAddress(v.AsString()); ok {
			out = append(out, Problem{File: file, Line: a.Range.Start.Line, Message: fmt.Sprintf("module %q: registry source %q is in JSON syntax, which is not rewritten; use a .tf file or an oci:// source", b.Labels[0], v.AsString())})
		}
	}
	return out
}
