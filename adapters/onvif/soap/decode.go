package soap

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

type faultXML struct {
	Code struct {
		Value   string      `xml:"Value"`
		Subcode *subcodeXML `xml:"Subcode"`
	} `xml:"Code"`
	Reason struct {
		Text []string `xml:"Text"`
	} `xml:"Reason"`
	Detail textXML `xml:"Detail"`
	// SOAP 1.1, which some cameras still answer with.
	FaultCode   string  `xml:"faultcode"`
	FaultString string  `xml:"faultstring"`
	DetailV11   textXML `xml:"detail"`
}

// textXML collects the character data of an element and of everything
// inside it (env:Detail holds env:Text, ter:ErrorDetail or plain text,
// as cameras choose), each piece trimmed, joined by spaces.
type textXML struct {
	parts []string
}

func (t *textXML) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	for {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		switch x := tok.(type) {
		case xml.CharData:
			if s := strings.Join(strings.Fields(string(x)), " "); s != "" {
				t.parts = append(t.parts, s)
			}
		case xml.EndElement:
			if x.Name == start.Name {
				return nil
			}
		}
	}
}

func (t *textXML) String() string { return strings.Join(t.parts, " ") }

type subcodeXML struct {
	Value   string      `xml:"Value"`
	Subcode *subcodeXML `xml:"Subcode"`
}

// NewDecoder returns an XML decoder over data that accepts the charset
// labels cameras put on ASCII bodies ("utf-16" on plain bytes, "ISO-8859-1").
func NewDecoder(data []byte) *xml.Decoder {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.CharsetReader = func(label string, in io.Reader) (io.Reader, error) {
		b, err := io.ReadAll(in)
		if err != nil {
			return nil, err
		}
		if utf8.Valid(b) {
			return bytes.NewReader(b), nil
		}
		if l := strings.ToLower(label); l == "iso-8859-1" || l == "latin1" {
			r := make([]rune, len(b))
			for i, c := range b {
				r[i] = rune(c)
			}
			return strings.NewReader(string(r)), nil
		}
		return nil, fmt.Errorf("unsupported charset %q", label)
	}
	return d
}

// Decode parses a SOAP envelope: it returns the fault when the body holds
// one, else decodes the body's first element into resp (when not nil). A
// body that is not an envelope gives an error wrapping ErrMalformed.
func Decode(data []byte, resp any) (*Fault, error) {
	return decode(data, resp)
}

func decode(data []byte, resp any) (*Fault, error) {
	d := NewDecoder(data)
	inBody := false
	depth := 0
	for {
		tok, err := d.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%w: no body element", ErrMalformed)
			}
			return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 1 && t.Name.Local != "Envelope" {
				return nil, fmt.Errorf("%w: root element %q is not an Envelope", ErrMalformed, t.Name.Local)
			}
			if depth == 2 && t.Name.Local == "Body" {
				inBody = true
				continue
			}
			if !inBody {
				continue
			}
			if t.Name.Local == "Fault" {
				var f faultXML
				if err := d.DecodeElement(&f, &t); err != nil {
					return nil, fmt.Errorf("%w: fault: %w", ErrMalformed, err)
				}
				return f.fault(), nil
			}
			if resp == nil {
				if err := d.Skip(); err != nil {
					return nil, fmt.Errorf("%w: %s: %w", ErrMalformed, t.Name.Local, err)
				}
				return nil, nil
			}
			if err := d.DecodeElement(resp, &t); err != nil {
				return nil, fmt.Errorf("%w: %s: %w", ErrMalformed, t.Name.Local, err)
			}
			return nil, nil
		case xml.EndElement:
			depth--
			if inBody && depth == 1 {
				// An empty body: valid for calls answering nothing.
				return nil, nil
			}
		}
	}
}

func (f *faultXML) fault() *Fault {
	out := &Fault{Code: strings.TrimSpace(f.Code.Value), Reason: strings.TrimSpace(strings.Join(f.Reason.Text, " "))}
	var subs []string
	for s := f.Code.Subcode; s != nil; s = s.Subcode {
		subs = append(subs, strings.TrimSpace(s.Value))
	}
	out.Subcode = strings.Join(subs, "/")
	if out.Code == "" {
		out.Code = strings.TrimSpace(f.FaultCode)
	}
	if out.Reason == "" {
		out.Reason = strings.TrimSpace(f.FaultString)
	}
	out.Detail = f.Detail.String()
	if out.Detail == "" {
		out.Detail = f.DetailV11.String()
	}
	return out
}
