package settings

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// LoadFile applies the YAML file at path to c (LoadYAML); it is at most MaxFileSize bytes.
func (t *Table[T]) LoadFile(path string, c *T) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return fmt.Errorf("config: %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return fmt.Errorf("config: %s: larger than %d bytes", path, MaxFileSize)
	}
	return t.LoadYAML(data, path, c)
}

// LoadYAML applies the YAML document data, read from name, to c: a mapping of keys to values,
// each through its setting's Set (a scalar) or SetList (a sequence). A null value leaves the
// setting as it was; an empty document sets nothing. Unknown keys are errors, which list the
// known ones, unless IgnoreUnknownKeys. Every error begins with "config: <name>: ".
func (t *Table[T]) LoadYAML(data []byte, name string, c *T) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) { // empty, or comments only
			return nil
		}
		return fmt.Errorf("config: %s: %v", name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return fmt.Errorf("config: %s: want one YAML document", name)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("config: %s: line %d: want a mapping of keys to values", name, root.Line)
	}
	l := &yamlLoad[T]{table: t, c: c, merged: map[*yaml.Node]bool{}}
	l.mapping(root)
	if len(l.errs) == 0 {
		return nil
	}
	text := strings.Join(l.errs, "; ")
	if l.unknown {
		text += " (known keys: " + strings.Join(t.Keys(), ", ") + ")"
	}
	return fmt.Errorf("config: %s: %s", name, text)
}

// yamlLoad is one LoadYAML.
type yamlLoad[T any] struct {
	table   *Table[T]
	c       *T
	merged  map[*yaml.Node]bool // the mappings merged already: each once, so aliases cannot loop
	errs    []string            // "line N: ..." for each key that could not be applied
	unknown bool                // one of errs is an unknown key
}

// mapping applies the keys of m: first those merged in by "<<", then m's own, which win.
func (l *yamlLoad[T]) mapping(m *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Tag == "!!merge" {
			srcs := mergeSources(m.Content[i+1])
			for j := len(srcs) - 1; j >= 0; j-- { // the first source wins
				if !l.merged[srcs[j]] {
					l.merged[srcs[j]] = true
					l.mapping(srcs[j])
				}
			}
		}
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], resolve(m.Content[i+1])
		if k.Tag == "!!merge" {
			continue
		}
		key := resolve(k).Value
		if seen[key] {
			l.errs = append(l.errs, fmt.Sprintf("line %d: key %q given twice", k.Line, key))
			continue
		}
		seen[key] = true
		s, ok := l.table.lookup(key)
		switch {
		case !ok && l.table.IgnoreUnknownKeys:
		case !ok:
			l.unknown = true
			l.errs = append(l.errs, fmt.Sprintf("line %d: unknown key %q", k.Line, key))
		default:
			if err := apply(s, v, l.c); err != nil {
				l.errs = append(l.errs, fmt.Sprintf("line %d: %s: %v", k.Line, key, err))
			}
		}
	}
}

// mergeSources are the mappings a "<<" key merges: one, or a sequence of them.
func mergeSources(v *yaml.Node) []*yaml.Node {
	v = resolve(v)
	if v.Kind == yaml.MappingNode {
		return []*yaml.Node{v}
	}
	var out []*yaml.Node
	if v.Kind == yaml.SequenceNode {
		for _, e := range v.Content {
			if e = resolve(e); e.Kind == yaml.MappingNode {
				out = append(out, e)
			}
		}
	}
	return out
}

// apply sets s from the YAML value v.
func apply[T any](s Setting[T], v *yaml.Node, c *T) error {
	switch {
	case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
		return nil
	case v.Kind == yaml.ScalarNode:
		var text string
		if err := v.Decode(&text); err != nil {
			return err
		}
		return s.Set(c, text)
	case v.Kind == yaml.SequenceNode && s.SetList != nil:
		list := make([]string, 0, len(v.Content))
		for _, e := range v.Content {
			if e = resolve(e); e.Kind != yaml.ScalarNode || e.Tag == "!!null" {
				return fmt.Errorf("line %d: want a list of strings", e.Line)
			}
			var text string
			if err := e.Decode(&text); err != nil {
				return err
			}
			list = append(list, text)
		}
		return s.SetList(c, list)
	case s.SetList != nil:
		return fmt.Errorf("want a string or a list of strings")
	}
	return fmt.Errorf("want a single value, not a list or a mapping")
}

// resolve follows an alias (*name) to what it names.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}
