package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/osapgw/osapgw/osap"
	simmodbus "github.com/osapgw/osapgw/sim/modbus"
)

// The demo's Modbus part: two sensors (units 1 and 2) behind one Modbus
// TCP server, as on an RS-485 gateway; the gateway polls both over one
// shared link.
func init() {
	demoParts = append(demoParts, demoPart{
		name:  "modbus",
		start: startDemoModbus,
		actions: []demoAction{{
			title: "attribute.set boiler-1 main.setpoint = 23.5 °C",
			dev:   "boiler-1", typ: osap.TypeAttributeSet,
			body: osap.AttributeSet{Resource: "main", Values: map[string]any{"setpoint": 23.5}},
		}},
	})
}

func startDemoModbus(ctx context.Context, wg *sync.WaitGroup, log *slog.Logger) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := simmodbus.NewServer(map[byte]*simmodbus.Sensor{
		1: simmodbus.NewSensor(time.Second, 0),
		2: simmodbus.NewSensor(1300*time.Millisecond, 0),
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.ServeTCP(ctx, ln); err != nil && ctx.Err() == nil {
			log.Error("simulated Modbus server stopped", "err", err)
		}
	}()
	url := "tcp://" + ln.Addr().String()
	return demoModbusDevice("boiler-1", "Boiler room sensor", url, 1) + demoModbusDevice("store-2", "Store room sensor", url, 2), nil
}

func demoModbusDevice(id, name, url string, unit int) string {
	return fmt.Sprintf(`
[[device]]
id = %q
kind = "modbus"
name = %q
url = %q
unit = %d
poll = "1s"
report_every = "1m"

[[device.attribute]]
name = "temperature"
area = "environment"
table = "input"
address = 0
type = "float32"
unit = "°C"
deadband = 0.05

[[device.attribute]]
name = "humidity"
area = "environment"
table = "input"
address = 2
type = "float32"
unit = "%%"
deadband = 0.2

[[device.attribute]]
name = "pressure"
area = "environment"
table = "input"
address = 4
type = "uint16"
scale = 0.1
unit = "hPa"

[[device.attribute]]
name = "setpoint"
area = "control"
table = "holding"
address = 0
type = "int16"
scale = 0.1
unit = "°C"
writable = true
min = 5.0
max = 35.0
read_back = true

[[device.attribute]]
name = "door_open"
area = "status"
table = "discrete"
address = 0

[[device.event]]
name = "door"
attribute = "door_open"
on_change = true
`, id, name, url, unit)
}
