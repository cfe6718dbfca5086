package codec

import (
	"fmt"
	"reflect"
	"strings"
)

// unsupportedError reports a type that cannot be encoded.
type unsupportedError struct {
	root reflect.Type // the type asked about
	path string       // where in root the problem is, starting with root's name
	typ  reflect.Type // the offending type
	why  string
}

func (e *unsupportedError) Error() string {
	const fix = "; register a codec with spate.RegisterCodec or change the field type"
	if e.typ == e.root {
		return fmt.Sprintf("codec: cannot encode %s: %s%s", e.root, e.why, fix)
	}
	return fmt.Sprintf("codec: cannot encode %s: %s (%s): %s%s", e.root, e.path, e.typ, e.why, fix)
}

// decodeError places a decoding error in the value being decoded.
type decodeError struct {
	root reflect.Type // set when the error leaves the codec
	path []string     // field and index selectors, innermost first
	err  error
}

func (e *decodeError) Error() string {
	var b strings.Builder
	b.WriteString("codec: decode ")
	b.WriteString(e.root.String())
	const keep = 8 // selectors shown at either end of a long path
	for i := len(e.path) - 1; i >= 0; i-- {
		if i == len(e.path)-1-keep && i > keep {
			b.WriteString("...")
			i = keep
		}
		b.WriteString(e.path[i])
	}
	b.WriteString(": ")
	b.WriteString(e.err.Error())
	return b.String()
}

func (e *decodeError) Unwrap() error { return e.err }

// withPath records that err happened in the part of the value that elem
// (".Field", "[3]") selects.
func withPath(err error, elem string) error {
	if de, ok := err.(*decodeError); ok && de.root == nil {
		de.path = append(de.path, elem)
		return de
	}
	return &decodeError{path: []string{elem}, err: err}
}

// rootError completes err with the type being decoded.
func rootError(t reflect.Type, err error) error {
	if de, ok := err.(*decodeError); ok && de.root == nil {
		de.root = t
		return de
	}
	return &decodeError{root: t, err: err}
}

func errTooDeep(t reflect.Type) error {
	return fmt.Errorf("decode %s: nested more than %d levels deep", t, maxDepth)
}
