package strictyaml

import "gopkg.in/yaml.v3"

// Merge returns a deep copy of base with overlay laid over it: mappings merge key by key,
// anything else in overlay replaces what base had. Neither input is changed.
func Merge(base, overlay *yaml.Node) *yaml.Node {
	if base == nil {
		return Clone(overlay)
	}
	if overlay == nil {
		return Clone(base)
	}
	b, o := deref(base), deref(overlay)
	if b.Kind != yaml.MappingNode || o.Kind != yaml.MappingNode {
		return Clone(o)
	}
	out := Clone(b)
	for i := 0; i+1 < len(o.Content); i += 2 {
		k, v := o.Content[i], o.Content[i+1]
		found := false
		for j := 0; j+1 < len(out.Content); j += 2 {
			if out.Content[j].Value == k.Value {
				out.Content[j+1] = Merge(out.Content[j+1], v)
				found = true
				break
			}
		}
		if !found {
			out.Content = append(out.Content, Clone(k), Clone(v))
		}
	}
	return out
}

// Clone deep-copies a node tree (aliases are resolved into copies).
func Clone(n *yaml.Node) *yaml.Node {
	if n == nil {
		return nil
	}
	n = deref(n)
	c := *n
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, sub := range n.Content {
		c.Content[i] = Clone(sub)
	}
	return &c
}

// Lookup finds the node at a dotted path of mapping keys below n, or nil.
func Lookup(n *yaml.Node, path []string) *yaml.Node {
	n = deref(n)
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = deref(n.Content[0])
	}
	for _, key := range path {
		if n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next = deref(n.Content[i+1])
				break
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	return n
}

// Set puts value at a dotted path of mapping keys below root (a mapping), creating mappings on
// the way. It reports false if a non-mapping is in the way.
func Set(root *yaml.Node, path []string, value *yaml.Node) bool {
	n := deref(root)
	for i, key := range path {
		if n.Kind != yaml.MappingNode {
			return false
		}
		var next *yaml.Node
		idx := -1
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == key {
				next, idx = n.Content[j+1], j+1
				break
			}
		}
		if i == len(path)-1 {
			if idx >= 0 {
				n.Content[idx] = value
			} else {
				n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, value)
			}
			return true
		}
		if next == nil {
			next = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, next)
		}
		n = deref(next)
	}
	return true
}

func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}
