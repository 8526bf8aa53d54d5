package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// The file's shape: the YAML is walked against rawConfig before it is
// decoded, so that every problem names the key and line in the user's
// words, not the Go types the yaml package would name.

// decode reads the YAML in data into raw, checking first that it has the
// shape rawConfig describes: the yaml package's own errors name Go types.
func (f *configFile) decode(data []byte, raw *rawConfig) *problem {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return &problem{msg: "the file is empty; it needs sud: and mogs: or midas: (docs/configuration.md)"}
		}
		return f.syntax(err)
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		return &problem{msg: "a second YAML document (---); put the whole config in one", line: next.Line}
	} else if !errors.Is(err, io.EOF) {
		return f.syntax(err)
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return &problem{msg: "the file is empty; it needs sud: and mogs: or midas: (docs/configuration.md)"}
	}
	if p := f.check("", root, reflect.TypeOf(*raw)); p != nil {
		return p
	}
	if err := root.Decode(raw); err != nil {
		// check has seen every key and value; this is not expected.
		msg := err.Error()
		var te *yaml.TypeError
		if errors.As(err, &te) && len(te.Errors) > 0 {
			msg = te.Errors[0]
		}
		return &problem{msg: strings.TrimPrefix(goTypes.ReplaceAllString(msg, "a value"), "yaml: ")}
	}
	return nil
}

// goTypes are the Go type names the yaml package puts in its messages.
var goTypes = regexp.MustCompile(`((?:config|main)\.\w+|struct \{.*\}|!!\w+)`)

// yamlLine is the line number the yaml package puts in its errors.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// syntax turns a YAML syntax error into a problem on its line.
func (f *configFile) syntax(err error) *problem {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return &problem{msg: "not valid YAML: " + msg[len(m[0]):], line: n}
	}
	return &problem{msg: "not valid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

// check walks node against t, a struct of yaml-tagged fields: a section
// (struct) must be a mapping of known keys, anything else one value. It
// records every key's line on the way.
func (f *configFile) check(prefix string, node *yaml.Node, t reflect.Type) *problem {
	if node.Kind == yaml.AliasNode {
		node = node.Alias
	}
	where := strings.TrimSuffix(prefix, ".")
	if node.Kind == yaml.ScalarNode && node.Tag == "!!null" && where != "" {
		return nil // "mogs:" with nothing under it: an empty section
	}
	if node.Kind != yaml.MappingNode {
		if where == "" {
			return &problem{msg: fmt.Sprintf("the file holds %s; want the keys %s", kindText(node), knownKeys(t)), line: node.Line}
		}
		return &problem{key: where, msg: fmt.Sprintf("holds %s; want the keys %s", kindText(node), knownKeys(t))}
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, v := node.Content[i], node.Content[i+1]
		key := prefix + k.Value
		if first, dup := f.lines[key]; dup {
			f.lines[key] = k.Line
			return &problem{key: key, msg: fmt.Sprintf("given twice (first on line %d)", first)}
		}
		f.lines[key] = k.Line
		field, ok := fieldByTag(t, k.Value)
		if !ok {
			msg := fmt.Sprintf("unknown key; %s takes %s", orTop(where), knownKeys(t))
			if near := nearKey(t, k.Value); near != "" {
				msg = fmt.Sprintf("unknown key; did you mean %s?", near)
			}
			return &problem{key: key, msg: msg}
		}
		if field.Type.Kind() == reflect.Struct && field.Type != reflect.TypeOf(time.Duration(0)) {
			if p := f.check(key+".", v, field.Type); p != nil {
				return p
			}
			continue
		}
		if field.Type.Kind() == reflect.Map {
			if v.Kind == yaml.AliasNode {
				v = v.Alias
			}
			if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
				continue
			}
			if v.Kind != yaml.MappingNode {
				return &problem{key: key, msg: fmt.Sprintf("holds %s; want a map of names to settings", kindText(v))}
			}
			for j := 0; j+1 < len(v.Content); j += 2 {
				if p := f.check(key+"."+v.Content[j].Value+".", v.Content[j+1], field.Type.Elem()); p != nil {
					return p
				}
			}
			continue
		}
		if v.Kind == yaml.AliasNode {
			v = v.Alias
		}
		if v.Kind != yaml.ScalarNode {
			return &problem{key: key, msg: fmt.Sprintf("holds %s; want one value", kindText(v))}
		}
	}
	return nil
}

func orTop(section string) string {
	if section == "" {
		return "the file"
	}
	return section
}

func kindText(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a map of keys"
	}
	return fmt.Sprintf("the value %q", n.Value)
}

func yamlTag(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return name
}

func fieldByTag(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if tag := yamlTag(t.Field(i)); tag == name && tag != "-" {
			return t.Field(i), true
		}
	}
	return reflect.StructField{}, false
}

func knownKeys(t reflect.Type) string {
	var names []string
	for i := range t.NumField() {
		if tag := yamlTag(t.Field(i)); tag != "" && tag != "-" {
			names = append(names, tag)
		}
	}
	return strings.Join(names, ", ")
}

// nearKey is the known key that name misspells by case, "_" or "-"
// (baseurl, Base-URL for base_url), or "".
func nearKey(t reflect.Type, name string) string {
	norm := func(s string) string { return strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(s)) }
	for i := range t.NumField() {
		if tag := yamlTag(t.Field(i)); norm(tag) == norm(name) {
			return tag
		}
	}
	return ""
}
