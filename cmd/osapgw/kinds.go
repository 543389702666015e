package main

// The adapter kinds this daemon ships; each registers itself.
import (
	_ "github.com/osapgw/osapgw/adapters/modbus"
	_ "github.com/osapgw/osapgw/adapters/onvif"
)
