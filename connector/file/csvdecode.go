package file

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// setter parses the text of a cell into v, an addressable value of the
// field's type.
type setter func(v reflect.Value, s string) error

// csvField is a struct field that CSV columns can be decoded into.
type csvField struct {
	name   string // the csv tag name, else the Go field name
	goName string
	index  []int // index path from the struct, through embedded structs
	set    setter
}

// csvDecoder decodes CSV rows into T. A decoder made by newCSVDecoder knows
// the fields of T; bindHeader and bindOrder derive one that knows the
// columns of a file and can decode its rows.
type csvDecoder[T any] struct {
	fields   []csvField
	bindings []csvBinding // one per bound field
	ncols    int          // number of columns of a row; -1 before binding
}

// csvBinding binds column col of a row to a field.
type csvBinding struct {
	col   int
	label string // how errors name the column
	field *csvField
}

var (
	timeType     = reflect.TypeFor[time.Time]()
	durationType = reflect.TypeFor[time.Duration]()
)

// newCSVDecoder compiles the fields of T, which must be a struct whose
// exported fields (including those promoted from embedded structs) are of a
// supported type or are tagged `csv:"-"`.
func newCSVDecoder[T any]() (*csvDecoder[T], error) {
	t := reflect.TypeFor[T]()
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("type %v is not a struct", t)
	}
	d := &csvDecoder[T]{ncols: -1}
	if err := collectFields(t, t, nil, &d.fields); err != nil {
		return nil, err
	}
	return d, nil
}

func collectFields(root, t reflect.Type, index []int, out *[]csvField) error {
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := sf.Tag.Get("csv")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		idx := append(append([]int(nil), index...), i)
		if sf.Anonymous && name == "" {
			ft := sf.Type
			if ft.Kind() == reflect.Struct && ft != timeType {
				if err := collectFields(root, ft, idx, out); err != nil {
					return err
				}
				continue
			}
			if ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct && ft.Elem() != timeType {
				if !sf.IsExported() && !hasExportedFields(ft.Elem()) {
					continue
				}
				return fmt.Errorf("type %v: embedded field %s has unsupported type %v (embed the struct, not a pointer)", root, sf.Name, ft)
			}
		}
		if !sf.IsExported() {
			continue
		}
		set, ok := setterFor(sf.Type)
		if !ok {
			return fmt.Errorf("type %v: field %s has unsupported type %v", root, sf.Name, sf.Type)
		}
		if name == "" {
			name = sf.Name
		}
		*out = append(*out, csvField{name: name, goName: sf.Name, index: idx, set: set})
	}
	return nil
}

func hasExportedFields(t reflect.Type) bool {
	for i := 0; i < t.NumField(); i++ {
		if t.Field(i).IsExported() {
			return true
		}
	}
	return false
}

// setterFor returns the setter of a field type, or false if the type is not
// supported.
func setterFor(t reflect.Type) (setter, bool) {
	switch t {
	case timeType:
		return func(v reflect.Value, s string) error {
			tm, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
			if err != nil {
				return err
			}
			v.Set(reflect.ValueOf(tm))
			return nil
		}, true
	case durationType:
		return func(v reflect.Value, s string) error {
			d, err := time.ParseDuration(strings.TrimSpace(s))
			if err != nil {
				return err
			}
			v.SetInt(int64(d))
			return nil
		}, true
	}
	switch t.Kind() {
	case reflect.String:
		return func(v reflect.Value, s string) error {
			v.SetString(s)
			return nil
		}, true
	case reflect.Bool:
		return func(v reflect.Value, s string) error {
			b, err := strconv.ParseBool(strings.TrimSpace(s))
			if err != nil {
				return err
			}
			v.SetBool(b)
			return nil
		}, true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		bits := t.Bits()
		return func(v reflect.Value, s string) error {
			n, err := strconv.ParseInt(strings.TrimSpace(s), 10, bits)
			if err != nil {
				return err
			}
			v.SetInt(n)
			return nil
		}, true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		bits := t.Bits()
		return func(v reflect.Value, s string) error {
			n, err := strconv.ParseUint(strings.TrimSpace(s), 10, bits)
			if err != nil {
				return err
			}
			v.SetUint(n)
			return nil
		}, true
	case reflect.Float32, reflect.Float64:
		bits := t.Bits()
		return func(v reflect.Value, s string) error {
			f, err := strconv.ParseFloat(strings.TrimSpace(s), bits)
			if err != nil {
				return err
			}
			v.SetFloat(f)
			return nil
		}, true
	case reflect.Pointer:
		elem := t.Elem()
		if elem.Kind() == reflect.Pointer {
			return nil, false
		}
		set, ok := setterFor(elem)
		if !ok {
			return nil, false
		}
		return func(v reflect.Value, s string) error {
			if strings.TrimSpace(s) == "" {
				v.SetZero() // nil
				return nil
			}
			p := reflect.New(elem)
			if err := set(p.Elem(), s); err != nil {
				return err
			}
			v.Set(p)
			return nil
		}, true
	}
	return nil, false
}

// bindHeader returns a decoder for rows under the given header row: each
// field takes the column whose name equals its csv tag or field name, or
// failing that equals it ignoring case (names are compared without
// surrounding spaces). Columns that no field takes are ignored and fields
// without a column stay zero. Rows must have as many cells as the header.
func (d *csvDecoder[T]) bindHeader(header []string) *csvDecoder[T] {
	nd := &csvDecoder[T]{fields: d.fields, ncols: len(header)}
	names := make([]string, len(header))
	for i, h := range header {
		names[i] = strings.TrimSpace(h)
	}
	for fi := range d.fields {
		f := &d.fields[fi]
		col := -1
		for i, h := range names {
			if h == f.name {
				col = i
				break
			}
		}
		if col < 0 {
			for i, h := range names {
				if strings.EqualFold(h, f.name) {
					col = i
					break
				}
			}
		}
		if col >= 0 {
			nd.bindings = append(nd.bindings, csvBinding{col: col, label: strconv.Quote(names[col]), field: f})
		}
	}
	return nd
}

// bindOrder returns a decoder for headerless rows of ncols cells: column i
// goes to the i-th field. Columns beyond the fields are ignored and fields
// beyond the columns stay zero.
func (d *csvDecoder[T]) bindOrder(ncols int) *csvDecoder[T] {
	nd := &csvDecoder[T]{fields: d.fields, ncols: ncols}
	for i := range d.fields {
		if i >= ncols {
			break
		}
		f := &d.fields[i]
		nd.bindings = append(nd.bindings, csvBinding{col: i, label: fmt.Sprintf("%d (field %s)", i+1, f.goName), field: f})
	}
	return nd
}

// decodeRow decodes the cells of one row into a new T. The error of a row
// with the wrong number of cells says so; the error of a cell that does not
// parse names its column.
func (d *csvDecoder[T]) decodeRow(cells []string) (T, error) {
	var v T
	if err := d.decodeInto(reflect.ValueOf(&v).Elem(), cells); err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

// decodeInto is decodeRow decoding into dst, an addressable T that must be
// zero. On error dst is left partly set.
func (d *csvDecoder[T]) decodeInto(dst reflect.Value, cells []string) error {
	if d.ncols < 0 {
		return fmt.Errorf("csv decoder has no columns bound")
	}
	if len(cells) != d.ncols {
		return fmt.Errorf("wrong number of fields: got %d, want %d", len(cells), d.ncols)
	}
	for _, b := range d.bindings {
		if err := b.field.set(dst.FieldByIndex(b.field.index), cells[b.col]); err != nil {
			return fmt.Errorf("column %s: %w", b.label, err)
		}
	}
	return nil
}
