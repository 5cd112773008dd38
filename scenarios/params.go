package scenarios

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/dsnscale/dsnscale/internal/strictyaml"
)

var paramName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

// ParseSet parses --set arguments ("name=value") into a map; a repeated name keeps the last.
func ParseSet(args []string) (map[string]string, error) {
	out := make(map[string]string, len(args))
	for _, a := range args {
		name, value, ok := strings.Cut(a, "=")
		if !ok || !paramName.MatchString(name) {
			return nil, &strictyaml.Error{File: "--set", Msg: fmt.Sprintf("%q: want name=value, the name letters, digits and _", a)}
		}
		out[name] = value
	}
	return out, nil
}

// refs returns the parameter names a scalar refers to with ${name}; malformed references are
// left to substitute, which reports them where they are.
func refs(s string) []string {
	var out []string
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			continue
		}
		switch s[i+1] {
		case '$':
			i++
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return out
			}
			out = append(out, s[i+2:i+2+end])
			i += 2 + end
		}
	}
	return out
}

// substitute replaces ${name} with the parameter's value and $$ with $. Substitution is text
// only: no expressions, no nesting.
func substitute(s string, values map[string]string) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", fmt.Errorf("unterminated ${ in %q", s)
			}
			name := s[i+2 : i+2+end]
			v, ok := values[name]
			if !ok {
				if !paramName.MatchString(name) {
					return "", fmt.Errorf("${%s}: only a parameter name may go inside ${} (no expressions)", name)
				}
				return "", fmt.Errorf("${%s}: no such parameter (declared: %s)", name, declaredList(values))
			}
			b.WriteString(v)
			i += 2 + end
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

func declaredList(values map[string]string) string {
	if len(values) == 0 {
		return "none"
	}
	names := make([]string, 0, len(values))
	for n := range values {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// bindParams decodes the params section, applies set and checks that every declared parameter
// is used somewhere in the file and that every set one is declared. It returns the values in
// effect.
func bindParams(d *strictyaml.Decoder, root *yaml.Node, set map[string]string) (Params, map[string]string) {
	var params Params
	var paramsNode *yaml.Node
	if root.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(root.Content); i += 2 {
			if root.Content[i].Value == "params" {
				paramsNode = root.Content[i+1]
				params.UnmarshalYAMLNode(d, paramsNode, "params")
			}
		}
	}
	values := make(map[string]string, len(params))
	for _, p := range params {
		values[p.Name] = p.Default
	}
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if _, ok := values[n]; !ok {
			d.Errorf(nil, "--set "+n, "not a parameter of this scenario (declared: %s)", declaredList(values))
			continue
		}
		values[n] = set[n]
	}
	used := map[string]bool{}
	strictyaml.Walk(root, "", func(n *yaml.Node, path string) {
		if path == "params" || strings.HasPrefix(path, "params.") || strings.HasPrefix(path, "params[") {
			return
		}
		for _, r := range refs(n.Value) {
			used[r] = true
		}
	})
	for _, p := range params {
		if !used[p.Name] {
			d.Errorf(&yaml.Node{Line: p.Line}, strictyaml.Key("params", p.Name), "declared but never used")
		}
	}
	return params, values
}
