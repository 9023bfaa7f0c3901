package synckairos_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/synckairos/synckairos"
)

// TestCloneSharesNothing fills every field of a State, at every depth, and
// checks that its Clone is equal and shares no pointer, slice or map with
// it: a field added to State (or to what it holds) that Clone leaves shared
// makes it fail.
func TestCloneSharesNothing(t *testing.T) {
	t.Parallel()
	var s synckairos.State
	fill(reflect.ValueOf(&s).Elem())
	c := s.Clone()
	if diff := cmp.Diff(&s, c); diff != "" {
		t.Fatalf("Clone differs (-state +clone):\n%s", diff)
	}
	shared(t, "State", reflect.ValueOf(s), reflect.ValueOf(*c))
}

var timeType = reflect.TypeFor[time.Time]()

// fill sets v, and everything it holds, to values that are not zero.
func fill(v reflect.Value) {
	if v.Type() == timeType {
		v.Set(reflect.ValueOf(time.Unix(1_700_000_000, 5_000_000).UTC()))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(7)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(7)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(0.5)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem())
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fill(v.Index(i))
		}
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k)
		fill(e)
		v.SetMapIndex(k, e)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	default:
		panic("fill: no value for a " + v.Type().String())
	}
}

// shared fails t for each pointer, slice or map that a and b share.
func shared(t *testing.T, path string, a, b reflect.Value) {
	t.Helper()
	if a.Type() == timeType {
		return
	}
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() {
			t.Errorf("%s: nil, not filled", path)
			return
		}
		if a.Pointer() == b.Pointer() {
			t.Errorf("%s: the clone shares the pointer", path)
		}
		shared(t, path, a.Elem(), b.Elem())
	case reflect.Slice:
		if a.Len() == 0 {
			t.Errorf("%s: empty, not filled", path)
			return
		}
		if a.Pointer() == b.Pointer() {
			t.Errorf("%s: the clone shares the slice's array", path)
		}
		for i := range a.Len() {
			shared(t, path+"[i]", a.Index(i), b.Index(i))
		}
	case reflect.Map:
		if a.Pointer() == b.Pointer() {
			t.Errorf("%s: the clone shares the map", path)
		}
	case reflect.Struct:
		for i := range a.NumField() {
			if a.Type().Field(i).IsExported() {
				shared(t, path+"."+a.Type().Field(i).Name, a.Field(i), b.Field(i))
			}
		}
	}
}
