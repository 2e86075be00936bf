package modsource

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
)

// Dependency is a module block of a package whose source is a module
// registry address.
type Dependency struct {
	// Address is the registry module, hostname filled in.
	Address config.ModuleAddr
	// Source is the source string as written.
	Source string
	// File is the slash-separated path of the file inside the package,
	// Line the line of the source attribute.
	File string
	Line int
}

// maxScanFile skips generated giants; hand-written configuration is small.
const maxScanFile = 4 << 20

// RegistryDependencies scans the .tf and .tofu files under root (not
// .git, not through symlinks) for top-level module blocks whose literal
// source is a registry address ([HOST/]NAMESPACE/NAME/SYSTEM[//subdir]),
// in file and line order. Local paths, git, http, oci and other addresses
// are not registry modules and are left out, as are sources built from
// expressions. JSON syntax (.tf.json) is not scanned.
//
// The scanner is a small HCL tokenizer, not a full parser: it understands
// comments, strings with escapes and interpolation, heredocs and nesting,
// which is what finding "module" blocks and their "source" needs.
func RegistryDependencies(root string) ([]Dependency, error) {
	var out []Dependency
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() || !(strings.HasSuffix(d.Name(), ".tf") || strings.HasSuffix(d.Name(), ".tofu")) {
			return nil
		}
		info, err := d.Info()
		if err != nil || info.Size() > maxScanFile {
			return err
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		for _, m := range moduleSources(src) {
			if a, ok := RegistryAddress(m.value); ok {
				out = append(out, Dependency{Address: a, Source: m.value, File: filepath.ToSlash(rel), Line: m.line})
			}
		}
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("scanning %s for module dependencies: %w", root, err)
	}
	return out, nil
}

// RegistryAddress reports whether a module source string is a registry
// address, as OpenTofu decides: not a local path, no getter or scheme, a
// valid [HOST/]NAMESPACE/NAME/SYSTEM once any //subdir is removed, and not
// on github.com or bitbucket.org (whose shorthands look alike).
func RegistryAddress(source string) (config.ModuleAddr, bool) {
	s := source
	if strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../") || strings.HasPrefix(s, "/") || strings.Contains(s, "::") || strings.ContainsAny(s, "?#") {
		return config.ModuleAddr{}, false
	}
	if i := strings.Index(s, "//"); i >= 0 {
		s = s[:i]
	}
	a, err := config.ParseModuleAddr(s)
	if err != nil || a.Hostname == "github.com" || a.Hostname == "bitbucket.org" {
		return config.ModuleAddr{}, false
	}
	return a, true
}

// SortedAddresses returns the distinct addresses of deps, as
// "HOST/NAMESPACE/NAME/SYSTEM" strings, sorted.
func SortedAddresses(deps []Dependency) []string {
	out := make([]string, 0, len(deps))
	for _, d := range deps {
		out = append(out, d.Address.String())
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// moduleSource is a literal source attribute of a top-level module block.
type moduleSource struct {
	value string
	line  int
}

type tokenKind int

const (
	tokOther tokenKind = iota
	tokIdent
	tokString // a quoted string without interpolation; text holds its value
	tokTemplate
	tokNewline
	tokOpen
	tokClose
	tokEquals
)

type token struct {
	kind tokenKind
	text string
	line int
}

// moduleSources finds source = "..." at the top level of module "x" { }
// blocks. Attributes are recognised only at the start of a line, as HCL
// writes them; the source must be a plain string.
func moduleSources(src []byte) []moduleSource {
	toks := tokenize(src)
	var out []moduleSource
	depth := 0
	inModule := false
	lineStart := true
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch t.kind {
		case tokNewline:
			lineStart = true
			continue
		case tokOpen:
			depth++
		case tokClose:
			depth--
			if depth <= 0 {
				depth, inModule = 0, false
			}
		case tokIdent:
			if lineStart && depth == 0 && t.text == "module" && i+2 < len(toks) &&
				(toks[i+1].kind == tokString || toks[i+1].kind == tokIdent) && toks[i+2].kind == tokOpen {
				inModule = true
				depth = 1
				i += 2
			} else if lineStart && inModule && depth == 1 && t.text == "source" && i+2 < len(toks) &&
				toks[i+1].kind == tokEquals && toks[i+2].kind == tokString &&
				(i+3 >= len(toks) || toks[i+3].kind == tokNewline || toks[i+3].kind == tokClose) {
				out = append(out, moduleSource{value: toks[i+2].text, line: t.line})
				i += 2
			}
		}
		// After "{" an attribute may follow on the same line:
		// module "x" { source = "..." } is valid HCL too.
		lineStart = toks[i].kind == tokOpen
	}
	return out
}

// tokenize splits HCL native syntax into the few tokens moduleSources needs.
func tokenize(src []byte) []token {
	var toks []token
	line := 1
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == '\n':
			toks = append(toks, token{kind: tokNewline, line: line})
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '#' || (c == '/' && i+1 < len(src) && src[i+1] == '/'):
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(src) && src[i+1] == '*':
			end := bytes.Index(src[i+2:], []byte("*/"))
			if end < 0 {
				end = len(src) - i - 2
			}
			line += bytes.Count(src[i:i+2+end], []byte("\n"))
			i = min(i+2+end+2, len(src))
		case c == '"':
			start := line
			value, next, template, lines := readString(src, i)
			kind := tokString
			if template {
				kind = tokTemplate
			}
			toks = append(toks, token{kind: kind, text: value, line: start})
			line += lines
			i = next
		case c == '<' && i+1 < len(src) && src[i+1] == '<':
			next, lines, ok := skipHeredoc(src, i)
			if !ok {
				toks = append(toks, token{kind: tokOther, line: line})
				i += 2
				continue
			}
			toks = append(toks, token{kind: tokTemplate, line: line})
			line += lines
			i = next
		case c == '{' || c == '(' || c == '[':
			toks = append(toks, token{kind: tokOpen, line: line})
			i++
		case c == '}' || c == ')' || c == ']':
			toks = append(toks, token{kind: tokClose, line: line})
			i++
		case c == '=':
			if i+1 < len(src) && (src[i+1] == '=' || src[i+1] == '>') {
				toks = append(toks, token{kind: tokOther, line: line})
				i += 2
				continue
			}
			toks = append(toks, token{kind: tokEquals, line: line})
			i++
		case isIdentStart(c):
			j := i + 1
			for j < len(src) && isIdentPart(src[j]) {
				j++
			}
			toks = append(toks, token{kind: tokIdent, text: string(src[i:j]), line: line})
			i = j
		default:
			toks = append(toks, token{kind: tokOther, line: line})
			i++
		}
	}
	return toks
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80
}

func isIdentPart(c byte) bool { return isIdentStart(c) || c == '-' || (c >= '0' && c <= '9') }

// readString reads the quoted string starting at src[i] == '"'. It
// returns the unescaped value, the index after the closing quote, whether
// it holds ${ } or %{ } template sequences (whose braces may nest strings),
// and the newlines it spans (only inside templates: HCL strings are
// single-line otherwise, so an unterminated one ends at the newline).
func readString(src []byte, i int) (value string, next int, template bool, lines int) {
	var b strings.Builder
	i++ // opening quote
	for i < len(src) {
		c := src[i]
		switch {
		case c == '"':
			return b.String(), i + 1, template, lines
		case c == '\n':
			return b.String(), i, template, lines
		case c == '\\' && i+1 < len(src):
			switch e := src[i+1]; e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case 'u', 'U':
				n := 4
				if e == 'U' {
					n = 8
				}
				if i+2+n <= len(src) {
					if r, err := strconv.ParseUint(string(src[i+2:i+2+n]), 16, 32); err == nil {
						b.WriteRune(rune(r))
						i += 2 + n
						continue
					}
				}
				b.WriteByte(e)
			default:
				b.WriteByte(e)
			}
			i += 2
		case (c == '$' || c == '%') && i+1 < len(src) && src[i+1] == '{':
			if i+2 < len(src) && src[i+2] == c {
				// $${ and %%{ are literal "${" and "%{".
				b.WriteByte(c)
				b.WriteByte('{')
				i += 3
				continue
			}
			template = true
			var n int
			i, n = skipTemplate(src, i+2)
			lines += n
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), i, template, lines
}

// skipTemplate skips a ${ ... } or %{ ... } sequence whose body starts at
// src[i], counting nested braces and strings; it returns the index after
// the closing brace and the newlines it spans.
func skipTemplate(src []byte, i int) (int, int) {
	depth, lines := 1, 0
	for i < len(src) {
		switch src[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return i + 1, lines
			}
		case '"':
			_, next, _, n := readString(src, i)
			lines += n
			i = next
			continue
		case '\n':
			lines++
		}
		i++
	}
	return i, lines
}

// skipHeredoc skips <<ID or <<-ID through the line holding only ID; ok is
// false when src[i:] is not a heredoc opener.
func skipHeredoc(src []byte, i int) (next, lines int, ok bool) {
	j := i + 2
	if j < len(src) && src[j] == '-' {
		j++
	}
	k := j
	for k < len(src) && isIdentPart(src[k]) {
		k++
	}
	if k == j || k >= len(src) || (src[k] != '\n' && src[k] != '\r') {
		return 0, 0, false
	}
	id := src[j:k]
	pos := k
	for {
		nl := bytes.IndexByte(src[pos:], '\n')
		if nl < 0 {
			return len(src), lines, true
		}
		pos += nl + 1
		lines++
		end := bytes.IndexByte(src[pos:], '\n')
		if end < 0 {
			end = len(src) - pos
		}
		if bytes.Equal(bytes.TrimSpace(src[pos:pos+end]), id) {
			return pos + end, lines, true
		}
	}
}
