package modbus

import (
	"errors"
	"fmt"

	"github.com/goburrow/modbus"
)

// MaxPDUData is the most data a request or response PDU carries after its
// function code (a PDU is at most 253 bytes).
const MaxPDUData = 252

// pduClient is the client a link hands its jobs: goburrow's client for the
// functions the library knows, and the handler it wraps (its packager and
// transporter) for the requests it has no method for (Read Device
// Identification, modbus.raw).
type pduClient struct {
	modbus.Client
	h modbus.ClientHandler
}

func newPDUClient(h modbus.ClientHandler) pduClient {
	ch := &checkedHandler{ClientHandler: h}
	return pduClient{Client: modbus.NewClient(ch), h: ch}
}

// checkedHandler refuses, as a garbled answer, an answer PDU that is
// neither of the request's function nor an exception to it with its code.
// goburrow's client takes any answer of another function for an exception
// whose code is the answer's first data byte: a stale answer to a Read
// Coils of two bytes, met by a Read Holding Registers, would be exception
// 2 (illegal data address), and the points it covers marked bad.
type checkedHandler struct {
	modbus.ClientHandler
	fc byte // of the last request encoded
}

// Encode frames the request PDU and remembers its function code.
func (h *checkedHandler) Encode(pdu *modbus.ProtocolDataUnit) ([]byte, error) {
	h.fc = pdu.FunctionCode
	return h.ClientHandler.Encode(pdu)
}

// Decode unframes the answer and checks its function code against the
// request's; it returns an error for an answer of another function, and
// for an exception without exactly its one-byte code.
func (h *checkedHandler) Decode(adu []byte) (*modbus.ProtocolDataUnit, error) {
	pdu, err := h.ClientHandler.Decode(adu)
	if err != nil {
		return nil, err
	}
	switch pdu.FunctionCode {
	case h.fc:
		return pdu, nil
	case h.fc | 0x80:
		if len(pdu.Data) != 1 {
			return nil, fmt.Errorf("modbus: exception answer to function %d with %d bytes of data, want its code alone", h.fc, len(pdu.Data))
		}
		return pdu, nil
	}
	return nil, fmt.Errorf("modbus: answer of function %d to a request of function %d", pdu.FunctionCode, h.fc)
}

// sendPDU sends a request PDU (function code fc and data) to the unit the
// handler is set to, through goburrow's packager (framing, transaction id
// or CRC) and transporter, and returns the response PDU: its function code
// then its data. An exception answer is returned as *modbus.ModbusError,
// as the library's own methods do; a frame that fails the packager's
// checks is an error.
func (c pduClient) sendPDU(fc byte, data []byte) ([]byte, error) {
	req, err := c.h.Encode(&modbus.ProtocolDataUnit{FunctionCode: fc, Data: data})
	if err != nil {
		return nil, err
	}
	resp, err := c.h.Send(req)
	if err != nil {
		return nil, err
	}
	if err := c.h.Verify(req, resp); err != nil {
		return nil, err
	}
	pdu, err := c.h.Decode(resp)
	if err != nil {
		return nil, err
	}
	switch pdu.FunctionCode {
	case fc:
		return append([]byte{pdu.FunctionCode}, pdu.Data...), nil
	case fc | 0x80:
		if len(pdu.Data) < 1 {
			return nil, fmt.Errorf("modbus: exception answer to function %d without its code", fc)
		}
		return nil, &modbus.ModbusError{FunctionCode: pdu.FunctionCode, ExceptionCode: pdu.Data[0]}
	}
	return nil, fmt.Errorf("modbus: answer of function %d to a request of function %d", pdu.FunctionCode, fc)
}

// errNoPDU is returned by a job that needs sendPDU on a link whose client
// does not have it (never with the links of this package).
var errNoPDU = errors.New("modbus: link cannot send raw requests")

// pduFn returns the job that sends the request PDU fc, data and returns
// the response PDU (see pduClient.sendPDU).
func pduFn(fc byte, data []byte) func(modbus.Client) ([]byte, error) {
	return func(c modbus.Client) ([]byte, error) {
		pc, ok := c.(pduClient)
		if !ok {
			return nil, errNoPDU
		}
		return pc.sendPDU(fc, data)
	}
}

// exceptionName returns the name of a Modbus exception code, or "unknown".
func exceptionName(code byte) string {
	switch code {
	case modbus.ExceptionCodeIllegalFunction:
		return "illegal function"
	case modbus.ExceptionCodeIllegalDataAddress:
		return "illegal data address"
	case modbus.ExceptionCodeIllegalDataValue:
		return "illegal data value"
	case modbus.ExceptionCodeServerDeviceFailure:
		return "server device failure"
	case modbus.ExceptionCodeAcknowledge:
		return "acknowledge"
	case modbus.ExceptionCodeServerDeviceBusy:
		return "server device busy"
	case modbus.ExceptionCodeMemoryParityError:
		return "memory parity error"
	case modbus.ExceptionCodeGatewayPathUnavailable:
		return "gateway path unavailable"
	case modbus.ExceptionCodeGatewayTargetDeviceFailedToRespond:
		return "gateway target device failed to respond"
	}
	return "unknown"
}
