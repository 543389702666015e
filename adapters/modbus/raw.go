package modbus

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/goburrow/modbus"

	"github.com/osapgw/osapgw/adapters"
	"github.com/osapgw/osapgw/model"
)

// RawOperation is the operation of a device with allow_raw = true that
// sends a request PDU of the caller's choosing to the unit and returns the
// unit's answer (transparent transmission): what no attribute maps stays
// reachable. It sits in resource DefaultResource, area RawArea.
//
// Input: "function" (int, 1 to 127) and "data" (hex, the request data
// after the function code, at most MaxPDUData bytes; spaces allowed).
// Output: "response", the hex of the answer's data after its function
// code; or, when the unit answered with an exception, "exception" (its
// code) and "exception_name" instead: the unit's answer is relayed, not
// turned into a failed request. A unit that does not answer is a timeout.
const RawOperation = "modbus.raw"

// RawArea is the area of DefaultResource that holds RawOperation.
const RawArea = "modbus"

// rawOperationModel is RawOperation as the model shows it.
func rawOperationModel() model.Operation {
	lo, hi := 1.0, 127.0
	return model.Operation{
		Name:        RawOperation,
		Description: "send a request PDU to the unit and return its answer (transparent transmission)",
		Inputs: []model.Param{
			{Name: "function", Type: model.TypeInt, Min: &lo, Max: &hi, Required: true, Description: "function code, 1 to 127"},
			{Name: "data", Type: model.TypeString, Description: "request data after the function code, hex, at most 252 bytes"},
		},
		Outputs: []model.Param{
			{Name: "response", Type: model.TypeString, Description: "answer data after the function code, hex"},
			{Name: "exception", Type: model.TypeInt, Description: "exception code, when the unit answered with one (then no response)"},
			{Name: "exception_name", Type: model.TypeString, Description: "name of the exception code"},
		},
	}
}

// parseRawInput checks the input of RawOperation and returns the function
// code and request data. Its errors wrap adapters.ErrBadRequest.
func parseRawInput(in map[string]any) (byte, []byte, error) {
	for k := range in {
		if k != "function" && k != "data" {
			return 0, nil, fmt.Errorf("param %q: not declared: %w", k, adapters.ErrBadRequest)
		}
	}
	x, ok := in["function"]
	if !ok || x == nil {
		return 0, nil, fmt.Errorf("param %q: missing: %w", "function", adapters.ErrBadRequest)
	}
	lo, hi := 1.0, 127.0
	v, err := model.Coerce(model.TypeInt, x, &lo, &hi)
	if err != nil {
		return 0, nil, fmt.Errorf("param %q: %w (exception answers use 128 and up): %w", "function", err, adapters.ErrBadRequest)
	}
	fc := byte(v.(int64))
	var data []byte
	if x, ok := in["data"]; ok && x != nil {
		s, ok := x.(string)
		if !ok {
			return 0, nil, fmt.Errorf("param %q: want a hex string, got %T: %w", "data", x, adapters.ErrBadRequest)
		}
		s = strings.Join(strings.Fields(s), "")
		data, err = hex.DecodeString(s)
		if err != nil {
			return 0, nil, fmt.Errorf("param %q: not hex: %w: %w", "data", err, adapters.ErrBadRequest)
		}
		if len(data) > MaxPDUData {
			return 0, nil, fmt.Errorf("param %q: %d bytes, at most %d: %w", "data", len(data), MaxPDUData, adapters.ErrBadRequest)
		}
	}
	return fc, data, nil
}

// invokeRaw runs RawOperation: one request on the device's link, in turn
// with its polls and the other devices on the link.
func (a *Adapter) invokeRaw(ctx context.Context, in map[string]any) (map[string]any, error) {
	fc, data, err := parseRawInput(in)
	if err != nil {
		return nil, fmt.Errorf("device %q: operation %q: %w", a.dev.id, RawOperation, err)
	}
	sl := a.pool.acquire(a.dev.link, a.dev.requestDelay)
	defer a.pool.release(sl)
	// Not between the read and the write of a bit's read-modify-write.
	a.mu.Lock()
	defer a.mu.Unlock()
	b, err := sl.do(ctx, a.dev.unit, a.dev.timeout, pduFn(fc, data))
	var mbErr *modbus.ModbusError
	if errors.As(err, &mbErr) {
		return map[string]any{"exception": int64(mbErr.ExceptionCode), "exception_name": exceptionName(mbErr.ExceptionCode)}, nil
	}
	if err != nil {
		if fc > 4 { // not one of the reads (1-4): it may write
			err = mayHaveApplied(err)
		}
		return nil, fmt.Errorf("device %q: unit %d: operation %q: function %d: %w", a.dev.id, a.dev.unit, RawOperation, fc, err)
	}
	return map[string]any{"response": hex.EncodeToString(b[1:])}, nil
}
