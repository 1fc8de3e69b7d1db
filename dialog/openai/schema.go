package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
)

// schema is the subset of JSON Schema that tool parameters use: type
// (object, string, integer, number, boolean, array, null), properties,
// required, enum, items, additionalProperties (false), minimum/maximum,
// minLength/maxLength. Other keywords are accepted and ignored, so a
// richer schema still reaches the model unchanged.
type schema struct {
	Type                 string             `json:"type"`
	Properties           map[string]*schema `json:"properties"`
	Required             []string           `json:"required"`
	Enum                 []json.RawMessage  `json:"enum"`
	Items                *schema            `json:"items"`
	AdditionalProperties *bool              `json:"additionalProperties"`
	Minimum              *float64           `json:"minimum"`
	Maximum              *float64           `json:"maximum"`
	MinLength            *int               `json:"minLength"`
	MaxLength            *int               `json:"maxLength"`

	enum []any // Enum decoded
}

// maxSchemaDepth bounds nesting in schemas and in validated values.
const maxSchemaDepth = 16

// parseSchema checks and compiles a tool's parameter schema. An empty
// schema means an object without parameters.
func parseSchema(raw json.RawMessage) (*schema, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return &schema{Type: "object"}, nil
	}
	var s schema
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	if s.Type != "object" {
		return nil, fmt.Errorf("schema: parameters must be of type object, not %q", s.Type)
	}
	if err := s.compile(0); err != nil {
		return nil, err
	}
	return &s, nil
}

func (s *schema) compile(depth int) error {
	if depth > maxSchemaDepth {
		return errors.New("schema: nested too deep")
	}
	switch s.Type {
	case "", "object", "string", "integer", "number", "boolean", "array", "null":
	default:
		return fmt.Errorf("schema: unknown type %q", s.Type)
	}
	for _, e := range s.Enum {
		var v any
		if err := json.Unmarshal(e, &v); err != nil {
			return fmt.Errorf("schema: enum: %w", err)
		}
		s.enum = append(s.enum, v)
	}
	for _, name := range s.Required {
		if s.Properties != nil && s.Properties[name] == nil {
			return fmt.Errorf("schema: required property %q is not declared", name)
		}
	}
	for name, p := range s.Properties {
		if p == nil {
			return fmt.Errorf("schema: property %q is null", name)
		}
		if err := p.compile(depth + 1); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	if s.Items != nil {
		if err := s.Items.compile(depth + 1); err != nil {
			return fmt.Errorf("items: %w", err)
		}
	}
	return nil
}

// validate checks raw tool arguments against s and returns them decoded.
// Errors name the offending field, so the model can correct its call.
func (s *schema) validate(raw json.RawMessage) (map[string]any, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = json.RawMessage("{}") // some servers send "" for a call without arguments
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("arguments are not valid JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("arguments hold more than one JSON value")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("arguments must be a JSON object")
	}
	if err := s.check("arguments", obj, 0); err != nil {
		return nil, err
	}
	return obj, nil
}

func (s *schema) check(path string, v any, depth int) error {
	if depth > maxSchemaDepth {
		return fmt.Errorf("%s: nested too deep", path)
	}
	if len(s.enum) > 0 && !slices.ContainsFunc(s.enum, func(e any) bool { return jsonEqual(e, v) }) {
		return fmt.Errorf("%s: must be one of %s", path, enumList(s.Enum))
	}
	switch s.Type {
	case "":
		return nil
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: must be an object", path)
		}
		for _, name := range s.Required {
			if _, ok := obj[name]; !ok {
				return fmt.Errorf("%s: missing required property %q", path, name)
			}
		}
		names := make([]string, 0, len(obj))
		for name := range obj {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			p := s.Properties[name]
			if p == nil {
				if s.AdditionalProperties != nil && !*s.AdditionalProperties {
					return fmt.Errorf("%s: unknown property %q", path, name)
				}
				continue
			}
			if err := p.check(path+"."+name, obj[name], depth+1); err != nil {
				return err
			}
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s: must be a string", path)
		}
		n := len([]rune(str))
		if s.MinLength != nil && n < *s.MinLength {
			return fmt.Errorf("%s: shorter than %d characters", path, *s.MinLength)
		}
		if s.MaxLength != nil && n > *s.MaxLength {
			return fmt.Errorf("%s: longer than %d characters", path, *s.MaxLength)
		}
	case "integer", "number":
		num, ok := v.(json.Number)
		if !ok {
			return fmt.Errorf("%s: must be a %s", path, s.Type)
		}
		f, err := num.Float64()
		if err != nil || math.IsInf(f, 0) {
			return fmt.Errorf("%s: not a usable number", path)
		}
		if s.Type == "integer" && f != math.Trunc(f) {
			return fmt.Errorf("%s: must be an integer", path)
		}
		if s.Minimum != nil && f < *s.Minimum {
			return fmt.Errorf("%s: must be at least %v", path, *s.Minimum)
		}
		if s.Maximum != nil && f > *s.Maximum {
			return fmt.Errorf("%s: must be at most %v", path, *s.Maximum)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%s: must be true or false", path)
		}
	case "null":
		if v != nil {
			return fmt.Errorf("%s: must be null", path)
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s: must be an array", path)
		}
		if s.Items != nil {
			for i, e := range arr {
				if err := s.Items.check(fmt.Sprintf("%s[%d]", path, i), e, depth+1); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// jsonEqual compares a decoded enum value with a decoded argument (whose
// numbers are json.Number).
func jsonEqual(enum, v any) bool {
	if n, ok := v.(json.Number); ok {
		f, err := n.Float64()
		e, ok := enum.(float64)
		return err == nil && ok && e == f
	}
	switch e := enum.(type) {
	case string:
		s, ok := v.(string)
		return ok && s == e
	case bool:
		b, ok := v.(bool)
		return ok && b == e
	case nil:
		return v == nil
	}
	return false
}

func enumList(raw []json.RawMessage) string {
	parts := make([]string, len(raw))
	for i, r := range raw {
		parts[i] = string(r)
	}
	return strings.Join(parts, ", ")
}
