package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/lcorp/licensing-controller/internal/fault"
)

// maxJSONDepth bounds the nesting of a request body: no request type of
// the API nests more than a few levels.
const maxJSONDepth = 32

// scalarAt is where a scalar value of a JSON document ends (or an object
// or array begins) and its path.
type scalarAt struct {
	end  int64
	path string
}

// jsonScan is what checkJSON learnt of a document: the path of each scalar,
// so that a type error found later by encoding/json (which knows only a byte
// offset and a dotted path without indexes) names the field exactly.
type jsonScan struct {
	scalars []scalarAt
}

// pathAt returns the path of the scalar value that ends, or the object or
// array that begins, at or before off.
func (s jsonScan) pathAt(off int64) string {
	path := ""
	for _, sc := range s.scalars {
		if sc.end > off {
			break
		}
		path = sc.path
	}
	return path
}

type frame struct {
	sh     *shape // what this object or array may hold (nil: anything)
	next   *shape // the shape of the value that comes next
	object bool
	index  int
	key    string   // the key whose value comes next (objects), when haveKey
	keys   []string // seen so far: objects of a request have a few keys
	// haveKey: an object's key was read and its value comes next.
	haveKey bool
	path    string
}

// shortKey keeps an error's field name short whatever key a client sent.
func shortKey(k string) string {
	if len(k) <= 128 {
		return k
	}
	cut := 128
	for cut > 0 && !utf8.RuneStart(k[cut]) {
		cut--
	}
	return k[:cut] + "…"
}

func (f *frame) child() string {
	if f.object {
		if f.path == "" {
			return shortKey(f.key)
		}
		return f.path + "." + shortKey(f.key)
	}
	return f.path + "[" + strconv.Itoa(f.index) + "]"
}

// decoders are reused: a new one allocates its buffers and state.
var decoders = sync.Pool{New: func() any { return new(jsontext.Decoder) }}

// checkJSON enforces the input hygiene of API.md §0 on a request body: one
// JSON value with nothing after it, no duplicate object keys, and no string
// (key or value) holding invalid UTF-8, a NUL or a lone surrogate escape.
// With a shape (of the type the body binds to), every object key must be
// one of its fields, spelt exactly. Errors name the field.
func checkJSON(body []byte, root *shape) (jsonScan, error) {
	var scan jsonScan
	// jsontext tokenizes without allocating per token; duplicates and bad
	// UTF-8 are let through so that the checks below name them. It parses a
	// bytes.Buffer in place (and does not write to it).
	dec := decoders.Get().(*jsontext.Decoder)
	defer func() {
		dec.Reset(new(bytes.Buffer)) // the pool keeps no request's body
		decoders.Put(dec)
	}()
	dec.Reset(bytes.NewBuffer(body), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	var stack []*frame
	prev := int64(0)
	top := func() *frame {
		if len(stack) == 0 {
			return nil
		}
		return stack[len(stack)-1]
	}
	// valuePath is the path of the value that the next token starts.
	valuePath := func() string {
		if f := top(); f != nil {
			return f.child()
		}
		return ""
	}
	done := func() { // a value of the top frame is complete
		if f := top(); f != nil {
			if f.object {
				f.key, f.haveKey = "", false
			} else {
				f.index++
			}
		}
	}
	for {
		tok, err := dec.ReadToken()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			switch {
			case len(bytes.TrimLeft(body[prev:], " \t\r\n:,")) > 0: // a value cut short
				return scan, fault.Invalid(orBody(valuePath()), "is not valid JSON: unexpected end of input")
			case len(stack) > 0 || prev == 0:
				return scan, fault.Invalid("body", "is not valid JSON: unexpected end of input")
			}
			return scan, nil
		}
		if err != nil {
			return scan, fault.Invalid(orBody(valuePath()), "is not valid JSON: "+syntaxMessage(err))
		}
		end := dec.InputOffset()
		raw := body[prev:end]
		prev = end
		f := top()
		kind := tok.Kind()
		isKey := f != nil && f.object && !f.haveKey && kind != '}'
		if kind == '"' {
			field := valuePath()
			if isKey {
				field = orBody(f.path)
			}
			if msg := badString(raw); msg != "" {
				if isKey {
					return scan, fault.Invalid(field, "has a key that "+msg)
				}
				return scan, fault.Invalid(orBody(field), msg)
			}
		}
		if isKey {
			k := tok.String()
			if slices.Contains(f.keys, k) {
				return scan, fault.Invalid(f.childWith(k), "is a duplicate key")
			}
			f.keys = append(f.keys, k)
			f.key, f.haveKey = k, true
			f.next = nil
			if f.sh != nil && f.sh.fields != nil {
				child, known, meant := f.sh.field(k)
				switch {
				case meant != "":
					return scan, fault.Invalid(f.childWith(k), "is not a known field (names are case-sensitive: "+meant+")")
				case !known:
					return scan, fault.Invalid(f.childWith(k), "is not a known field")
				}
				f.next = child
			}
			continue
		}
		switch kind {
		case '{', '[':
			if len(stack) >= maxJSONDepth {
				// Paths grow with the depth: an unbounded nesting of a
				// megabyte body would cost gigabytes before authentication.
				return scan, fault.Invalid("body", fmt.Sprintf("nests deeper than %d levels", maxJSONDepth))
			}
			sh := root
			if f != nil {
				sh = f.next
			}
			// The opening of an object or array is where encoding/json
			// reports an object or array of the wrong type.
			scan.scalars = append(scan.scalars, scalarAt{end: end, path: valuePath()})
			nf := &frame{object: kind == '{', path: valuePath(), sh: sh}
			if !nf.object && sh != nil {
				nf.next = sh.elem
			}
			stack = append(stack, nf)
			continue
		case '}', ']':
			stack = stack[:len(stack)-1]
		default:
			scan.scalars = append(scan.scalars, scalarAt{end: end, path: valuePath()})
		}
		done()
		if len(stack) == 0 {
			// One value, then only whitespace.
			if rest := bytes.TrimLeft(body[end:], " \t\r\n"); len(rest) > 0 {
				return scan, fault.Invalid("body", "has data after the JSON value")
			}
			return scan, nil
		}
	}
}

// syntaxMessage is a syntax error without jsontext's prefix and location
// (the field names where it is).
func syntaxMessage(err error) string {
	var se *jsontext.SyntacticError
	if errors.As(err, &se) && se.Err != nil {
		return fmt.Sprintf("%v at byte %d", se.Err, se.ByteOffset)
	}
	return err.Error()
}

func (f *frame) childWith(k string) string {
	if f.path == "" {
		return shortKey(k)
	}
	return f.path + "." + shortKey(k)
}

func orBody(path string) string {
	if path == "" {
		return "body"
	}
	return path
}

// badString inspects the raw bytes of a JSON string token (with whatever
// delimiters precede it) and says what is wrong with it, or "".
func badString(raw []byte) string {
	if !utf8.Valid(raw) {
		return "is not valid UTF-8"
	}
	if bytes.IndexByte(raw, 0) >= 0 {
		return "must not contain NUL bytes"
	}
	pendingHigh := false
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			if pendingHigh {
				return "contains a lone UTF-16 surrogate"
			}
			continue
		}
		i++
		if i >= len(raw) || raw[i] != 'u' || i+4 >= len(raw) {
			if pendingHigh {
				return "contains a lone UTF-16 surrogate"
			}
			continue
		}
		v, err := strconv.ParseUint(string(raw[i+1:i+5]), 16, 16)
		i += 4
		if err != nil {
			continue
		}
		switch {
		case v == 0:
			return "must not contain NUL characters"
		case v >= 0xD800 && v < 0xDC00:
			if pendingHigh {
				return "contains a lone UTF-16 surrogate"
			}
			pendingHigh = true
		case v >= 0xDC00 && v < 0xE000:
			if !pendingHigh {
				return "contains a lone UTF-16 surrogate"
			}
			pendingHigh = false
		default:
			if pendingHigh {
				return "contains a lone UTF-16 surrogate"
			}
		}
	}
	if pendingHigh {
		return "contains a lone UTF-16 surrogate"
	}
	return ""
}

// badText says what makes a path, query, form or header value unacceptable,
// or "".
func badText(s string) string {
	switch {
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	case strings.IndexByte(s, 0) >= 0:
		return "must not contain NUL bytes"
	}
	return ""
}

// typeErrorField names the field of a type error by the scan's paths.
func typeErrorField(scan jsonScan, e *json.UnmarshalTypeError) string {
	if p := scan.pathAt(e.Offset); p != "" {
		return p
	}
	if e.Field != "" {
		return e.Field
	}
	return "body"
}
