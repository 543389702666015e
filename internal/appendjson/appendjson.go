// Package appendjson appends JSON values to a byte slice without
// reflection, writing exactly the bytes encoding/json.Marshal writes for
// the same value. It serves the messages sent at every poll (attribute
// reports), where encoding/json's reflection and sorting cost most of the
// gateway's CPU.
//
// Only the common cases take the fast path: strings made of printable
// ASCII that needs no escaping, bools, int64, float64 and nil. Anything
// else (a string to escape, another type) is handed to encoding/json, so
// that the output is byte for byte the same in every case.
package appendjson

import (
	"encoding/json"
	"math"
	"strconv"
)

// String appends s as a JSON string, escaped as encoding/json escapes it
// (with HTML escaping).
func String(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !plain(s[i]) {
			b, _ := json.Marshal(s) // a string always encodes
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// plain reports whether c stands for itself inside a JSON string written
// by encoding/json: printable ASCII other than the quote, the backslash
// and the HTML-escaped <, > and &.
func plain(c byte) bool {
	return c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
}

// Float appends f as encoding/json writes a float64: the shortest
// representation, in exponent form below 1e-6 and from 1e21 on. It returns
// a *json.UnsupportedValueError for NaN and the infinities, as
// encoding/json does.
func Float(dst []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		_, err := json.Marshal(f) // encoding/json's own error
		return dst, err
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// Like encoding/json: e-07 becomes e-7.
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, nil
}

// Any appends x as json.Marshal(x) would. It fails as json.Marshal fails
// (a NaN, a channel, a failing MarshalJSON, ...), with its error.
func Any(dst []byte, x any) ([]byte, error) {
	switch x := x.(type) {
	case nil:
		return append(dst, "null"...), nil
	case bool:
		return strconv.AppendBool(dst, x), nil
	case int64:
		return strconv.AppendInt(dst, x, 10), nil
	case float64:
		return Float(dst, x)
	case string:
		return String(dst, x), nil
	}
	b, err := json.Marshal(x)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}
