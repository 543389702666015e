package config

import (
	"reflect"
	"unique"
)

// detach replaces every string reachable from v (through struct fields,
// pointers, slices, arrays, maps and interfaces) by an interned copy.
//
// The TOML decoder returns strings that share the memory of the text it
// parsed: one attribute name kept by an adapter would keep its whole
// [[device]] section alive, and the configuration's serial the whole
// file. Interning also shares the names that many devices repeat
// ("holding", "uint16", "r001", ...). Fields that reflection cannot set
// (unexported ones) are left alone.
func detach(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		if v.CanSet() {
			v.SetString(intern(v.String()))
		}
	case reflect.Pointer:
		if !v.IsNil() {
			detach(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			detach(v.Field(i))
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			detach(v.Index(i))
		}
	case reflect.Interface:
		if v.IsNil() || !v.CanSet() {
			return
		}
		// The value inside an interface cannot be set in place: detach
		// a settable copy and put it back.
		e := v.Elem()
		c := reflect.New(e.Type()).Elem()
		c.Set(e)
		detach(c)
		v.Set(c)
	case reflect.Map:
		if v.IsNil() {
			return
		}
		kt, et := v.Type().Key(), v.Type().Elem()
		for _, k := range v.MapKeys() {
			nk := reflect.New(kt).Elem()
			nk.Set(k)
			detach(nk)
			ne := reflect.New(et).Elem()
			ne.Set(v.MapIndex(k))
			detach(ne)
			v.SetMapIndex(k, reflect.Value{})
			v.SetMapIndex(nk, ne)
		}
	}
}

// intern returns a canonical copy of s that shares no memory with s.
func intern(s string) string {
	if s == "" {
		return ""
	}
	return unique.Make(s).Value()
}
