package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxYAMLNodes bounds the nodes one file may expand to, aliases included,
// so that a file of nested aliases cannot take the process's memory.
const maxYAMLNodes = 1 << 16

// yamlEntry is one flattened entry of a configuration file.
type yamlEntry struct {
	key, value string
	line       int
}

// ParseYAML reads a configuration file, Flink's config.yaml: a YAML
// mapping of keys, in the flat form ("taskmanager.numberOfTaskSlots: 2"),
// the nested form of Flink 1.19+ ("taskmanager:" then
// "  numberOfTaskSlots: 2") or a mix of both, flattened to dotted keys. A
// list is kept as YAML's flow form ("[a, b]"), as Flink renders list
// values; a null value leaves its key unset. name is used in errors, which
// give the line. A key Unknown warns about (a typo, or a Flink option Spate
// lacks) is logged as a warning with slog's default logger, naming the key
// and the file and suggesting a known key when one is close; a job's own
// keys (app.region) are not warned about.
func (c *Config) ParseYAML(r io.Reader, name string) error {
	return c.parseYAML(r, name, slog.Default())
}

func (c *Config) parseYAML(r io.Reader, name string, log *slog.Logger) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	entries, err := parseYAML(data, name)
	if err != nil {
		return err
	}
	for _, e := range entries {
		c.Set(e.key, e.value)
		s, unknown := Unknown(e.key)
		if !unknown {
			continue
		}
		msg := fmt.Sprintf("%s:%d: configuration key %q is not one Spate knows; it has no effect unless a job reads it", name, e.line, e.key)
		attrs := []any{"key", e.key, "file", name, "line", e.line}
		if s != "" {
			msg = fmt.Sprintf("%s:%d: configuration key %q is not one Spate knows (did you mean %s?)", name, e.line, e.key, s)
			attrs = append(attrs, "suggestion", s)
		}
		log.Warn(msg, attrs...)
	}
	return nil
}

// parseYAML flattens a configuration file into its entries, in the
// file's order.
func parseYAML(data []byte, name string) ([]yamlEntry, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil // empty, or only comments
		}
		return nil, yamlError(name, err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, yamlError(name, err)
	default:
		return nil, fmt.Errorf("%s:%d: a second YAML document (---): the configuration is one mapping of keys", name, extra.Line)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil, nil
		}
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: want \"key: value\" entries, got %s", name, root.Line, describe(root))
	}
	f := flattener{name: name, first: map[string]int{}}
	if err := f.mapping(root, "", false); err != nil {
		return nil, err
	}
	return f.out, nil
}

// flattener turns nested mappings into dotted keys.
type flattener struct {
	name  string
	nodes int
	first map[string]int // key -> line it was set
	out   []yamlEntry
}

func (f *flattener) count() error {
	f.nodes++
	if f.nodes > maxYAMLNodes {
		return fmt.Errorf("%s: more than %d YAML nodes (aliases included): not a configuration file", f.name, maxYAMLNodes)
	}
	return nil
}

// mapping adds the entries of m, its keys under prefix. The mappings
// merged in with "<<" come last and add only the keys not set otherwise,
// as YAML's merge keys do; merged is set while adding them.
func (f *flattener) mapping(m *yaml.Node, prefix string, merged bool) error {
	var merges []*yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], resolve(m.Content[i+1])
		if err := f.count(); err != nil {
			return err
		}
		if k.Kind != yaml.ScalarNode {
			return fmt.Errorf("%s:%d: a key must be text, got %s", f.name, k.Line, describe(k))
		}
		if k.Tag == "!!merge" { // <<: *anchor, or <<: [*a, *b]
			list := []*yaml.Node{v}
			if v.Kind == yaml.SequenceNode {
				list = v.Content
			}
			for _, mm := range list {
				if mm = resolve(mm); mm.Kind != yaml.MappingNode {
					return fmt.Errorf("%s:%d: << merges mappings, got %s", f.name, k.Line, describe(mm))
				}
				merges = append(merges, mm)
			}
			continue
		}
		name := strings.TrimSpace(k.Value)
		if name == "" {
			return fmt.Errorf("%s:%d: empty key", f.name, k.Line)
		}
		key := prefix + name
		switch v.Kind {
		case yaml.MappingNode:
			if err := f.mapping(v, key+".", merged); err != nil {
				return err
			}
		case yaml.ScalarNode:
			if v.Tag == "!!null" {
				continue // "key:" with no value leaves key unset
			}
			if err := f.add(key, v.Value, k.Line, merged); err != nil {
				return err
			}
		case yaml.SequenceNode:
			s, err := f.flow(v)
			if err != nil {
				return err
			}
			if err := f.add(key, s, k.Line, merged); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s:%d: value of %s: unexpected %s", f.name, v.Line, key, describe(v))
		}
	}
	for _, mm := range merges {
		if err := f.mapping(mm, prefix, true); err != nil {
			return err
		}
	}
	return nil
}

// add adds an entry; a key set twice is an error, unless merged, when the
// key set first stays.
func (f *flattener) add(key, value string, line int, merged bool) error {
	if prev, dup := f.first[key]; dup {
		if merged {
			return nil
		}
		return fmt.Errorf("%s:%d: key %s is set twice (also at line %d)", f.name, line, key, prev)
	}
	f.first[key] = line
	f.out = append(f.out, yamlEntry{key: key, value: value, line: line})
	return nil
}

// flow renders a sequence in YAML's flow form, "[a, b]", aliases resolved.
func (f *flattener) flow(n *yaml.Node) (string, error) {
	c, err := f.copyFlow(n)
	if err != nil {
		return "", err
	}
	b, err := yaml.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("%s:%d: render list: %w", f.name, n.Line, err)
	}
	return strings.TrimSpace(string(b)), nil
}

func (f *flattener) copyFlow(n *yaml.Node) (*yaml.Node, error) {
	if err := f.count(); err != nil {
		return nil, err
	}
	n = resolve(n)
	c := &yaml.Node{Kind: n.Kind, Tag: n.Tag, Value: n.Value, Style: n.Style}
	if n.Kind == yaml.SequenceNode || n.Kind == yaml.MappingNode {
		c.Style = yaml.FlowStyle
	}
	for _, ch := range n.Content {
		cc, err := f.copyFlow(ch)
		if err != nil {
			return nil, err
		}
		c.Content = append(c.Content, cc)
	}
	return c, nil
}

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.ScalarNode:
		return fmt.Sprintf("the text %q", n.Value)
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.AliasNode:
		return "an alias"
	}
	return "a YAML document"
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError puts a YAML library error in file:line form.
func yamlError(name string, err error) error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		if n, aerr := strconv.Atoi(m[1]); aerr == nil {
			return fmt.Errorf("%s:%d: %s", name, n, m[2])
		}
	}
	return fmt.Errorf("%s: %s", name, strings.TrimPrefix(msg, "yaml: "))
}
