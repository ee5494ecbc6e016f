package httpapi

import (
	"encoding/json"
	"reflect"
	"strings"
	"sync"
	"time"
)

// shape is the JSON object structure a request type accepts: its fields by
// exact name (encoding/json matches names case-insensitively, even
// through Unicode folding, so a wrong-case key or a second spelling of a
// key would bind silently), and the shapes of array elements. nil accepts
// anything (maps, interfaces, raw values).
type shape struct {
	fields map[string]*shape // objects of a struct type
	elem   *shape            // arrays
	scalar bool              // not an object or array at all
}

var shapes sync.Map // reflect.Type -> *shape

var (
	rawMessageType = reflect.TypeFor[json.RawMessage]()
	timeType       = reflect.TypeFor[time.Time]()
	unmarshaler    = reflect.TypeFor[json.Unmarshaler]()
)

// shapeOf returns the shape of values of t.
func shapeOf(t reflect.Type) *shape {
	if s, ok := shapes.Load(t); ok {
		return s.(*shape)
	}
	s := buildShape(t, map[reflect.Type]*shape{})
	shapes.Store(t, s)
	return s
}

func buildShape(t reflect.Type, seen map[reflect.Type]*shape) *shape {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if s, ok := seen[t]; ok {
		return s
	}
	switch {
	case t == rawMessageType || t.Kind() == reflect.Interface || t.Kind() == reflect.Map:
		return nil
	case t == timeType || reflect.PointerTo(t).Implements(unmarshaler):
		return &shape{scalar: true}
	}
	switch t.Kind() {
	case reflect.Struct:
		s := &shape{fields: map[string]*shape{}}
		seen[t] = s
		addFields(s, t, seen)
		return s
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return &shape{scalar: true} // []byte is a base64 string
		}
		return &shape{elem: buildShape(t.Elem(), seen)}
	}
	return &shape{scalar: true}
}

func addFields(s *shape, t reflect.Type, seen map[reflect.Type]*shape) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				addFields(s, ft, seen)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		s.fields[name] = buildShape(f.Type, seen)
	}
}

// field returns the shape of the field named exactly key and, when there is
// none, the name that only differs from key in case (as encoding/json
// would take it), if any.
func (s *shape) field(key string) (child *shape, known bool, meant string) {
	if c, ok := s.fields[key]; ok {
		return c, true, ""
	}
	for name := range s.fields {
		if strings.EqualFold(name, key) {
			return nil, false, name
		}
	}
	return nil, false, ""
}
