package config

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// walker collects problems while reading the YAML tree, so one run reports
// every mistake instead of the first.
type walker struct {
	file     string
	baseDir  string
	problems []Problem
}

// problemf records a problem at n's position (unknown when n is nil).
func (w *walker) problemf(n *yaml.Node, format string, args ...any) {
	p := Problem{File: w.file, Message: fmt.Sprintf(format, args...)}
	if n != nil {
		p.Line, p.Column = n.Line, n.Column
	}
	w.problems = append(w.problems, p)
}

// field is one key/value pair of a mapping, aliases already resolved.
type field struct {
	key, value *yaml.Node
}

// resolve follows aliases to the anchored node.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// isNull reports a missing value, "~", "null" or nothing after the colon;
// the plan treats all of them as "not set".
func isNull(n *yaml.Node) bool {
	n = resolve(n)
	return n == nil || n.Kind == 0 || n.Kind == yaml.AliasNode ||
		(n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// describe names a node's type for "must be X, not Y" messages.
func describe(n *yaml.Node) string {
	n = resolve(n)
	switch {
	case isNull(n):
		return "null"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	}
	switch tag := n.ShortTag(); tag {
	case "!!str":
		return fmt.Sprintf("the string %q", n.Value)
	case "!!int", "!!float":
		return "the number " + n.Value
	case "!!bool":
		return "the boolean " + n.Value
	default:
		return fmt.Sprintf("%s %q", tag, n.Value)
	}
}

// pairs returns the key/value pairs of mapping n, reporting keys that are
// not plain strings and merge keys. It reports a problem and returns false
// when n is not a mapping.
func (w *walker) pairs(n *yaml.Node, what string) ([]field, bool) {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		w.problemf(n, "%s must be a mapping, not %s", what, describe(n))
		return nil, false
	}
	var out []field
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		switch {
		case k == nil || k.Kind != yaml.ScalarNode:
			w.problemf(n.Content[i], "keys in %s must be strings, not %s", what, describe(k))
		case k.ShortTag() == "!!merge":
			w.problemf(n.Content[i], "YAML merge keys (<<) are not supported in %s; write the keys out", what)
		default:
			out = append(out, field{key: k, value: v})
		}
	}
	return out, true
}

// mapping reads mapping n whose keys must come from known. It reports
// duplicate and unknown keys and returns the first occurrence of each known
// key; nil when n is not a mapping (a problem is then recorded).
func (w *walker) mapping(n *yaml.Node, what string, known ...string) map[string]field {
	fields, ok := w.pairs(n, what)
	if !ok {
		return nil
	}
	out := make(map[string]field, len(fields))
	for _, f := range fields {
		name := f.key.Value
		if first, dup := out[name]; dup {
			w.problemf(f.key, "duplicate key %q in %s (first at line %d, column %d)", name, what, first.key.Line, first.key.Column)
			continue
		}
		if !slices.Contains(known, name) {
			msg := fmt.Sprintf("unknown key %q in %s", name, what)
			if s := suggest(name, known); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			} else {
				msg += "; known keys: " + strings.Join(known, ", ")
			}
			w.problemf(f.key, "%s", msg)
			continue
		}
		out[name] = f
	}
	return out
}

// str reads a string value. Numbers are taken as written, so "versions: 1.2"
// means the constraint "1.2". It returns false for null (no problem) and for
// other types (problem recorded).
func (w *walker) str(n *yaml.Node, what string) (string, bool) {
	n = resolve(n)
	if isNull(n) {
		return "", false
	}
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!str", "!!int", "!!float":
			return n.Value, true
		}
	}
	w.problemf(n, "%s must be a string, not %s", what, describe(n))
	return "", false
}

// boolean reads true or false; false, false for null.
func (w *walker) boolean(n *yaml.Node, what string) (bool, bool) {
	n = resolve(n)
	if isNull(n) {
		return false, false
	}
	var b bool
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool" && n.Decode(&b) == nil {
		return b, true
	}
	w.problemf(n, "%s must be true or false, not %s", what, describe(n))
	return false, false
}

// sequence reads a list; false for null (no problem) and other types
// (problem recorded).
func (w *walker) sequence(n *yaml.Node, what string) ([]*yaml.Node, bool) {
	n = resolve(n)
	if isNull(n) {
		return nil, false
	}
	if n.Kind != yaml.SequenceNode {
		msg := fmt.Sprintf("%s must be a list, not %s", what, describe(n))
		if n.Kind == yaml.ScalarNode {
			msg += fmt.Sprintf("; write [%s]", n.Value)
		}
		w.problemf(n, "%s", msg)
		return nil, false
	}
	items := make([]*yaml.Node, len(n.Content))
	for i, item := range n.Content {
		items[i] = resolve(item)
	}
	return items, true
}

// suggest returns the known key closest to a misspelt one, or "" when none
// is within two edits.
func suggest(name string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if d := editDistance(name, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between two short keys.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64 // long keys are never typos of ours; keep this cheap
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
