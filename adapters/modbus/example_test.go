package modbus_test

import (
	"fmt"

	"github.com/osapgw/osapgw/adapters/modbus"
)

func ExamplePlan() {
	spans := []modbus.Span{
		{ID: 0, Table: modbus.Input, Address: 0, Count: 2},   // temperature, float32
		{ID: 1, Table: modbus.Input, Address: 2, Count: 2},   // humidity, float32
		{ID: 2, Table: modbus.Input, Address: 10, Count: 8},  // status text, 16 characters
		{ID: 3, Table: modbus.Input, Address: 300, Count: 1}, // far away
		{ID: 4, Table: modbus.Coil, Address: 0, Count: 1},
	}
	for _, r := range modbus.Plan(spans, modbus.Limits{MaxGap: 8, MaxRegisters: 125, MaxBits: 2000}) {
		fmt.Println(r)
	}
	// Output:
	// coil 0+1 [4]
	// input 0+18 [0 1 2]
	// input 300+1 [3]
}

func ExampleCodec_Decode() {
	c := modbus.Codec{Type: modbus.Int32, Order: modbus.CDAB, Bit: -1, Scale: 0.01}
	v, err := c.Decode([]byte{0x08, 0x66, 0x00, 0x00}) // words swapped: 0x00000866 = 2150
	fmt.Println(v, err)
	// Output: 21.5 <nil>
}
