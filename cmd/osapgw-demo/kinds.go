package main

// The adapter kinds the demo's gateway uses; each registers itself.
import (
	_ "github.com/osapgw/osapgw/adapters/modbus"
	_ "github.com/osapgw/osapgw/adapters/onvif"
)
