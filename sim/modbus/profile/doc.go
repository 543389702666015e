// Package profile simulates the Modbus device a profile describes
// (package profiles, adapters/modbus): it answers reads of the profile's
// register map with plausible values that change over time, each encoded
// with its point's table, type, byte order, scale and offset by the
// adapter's own codec (modbus.AttributeConfig.Codec), so what the gateway
// decodes is what was meant. devsim modbus --profile serves it.
//
// # Values
//
// A point's value follows from its name and unit, one electrical and
// climatic state shared by the device's points, so that the points agree
// with each other:
//
//	V      phase voltages 226-234 V; line to line (voltage_l1_l2, ...) √3 times
//	       that; DC (voltage_dc) 570-630 V
//	A      0-20 A a phase (2-16 A); totals the phases' sum; neutral (_n) under 1 A
//	W      active power V·I·PF a phase, totals the sum; DC the AC power / 0.97
//	VA var apparent V·I and reactive √(S²-P²), likewise
//	PF     power_factor (unitless) 0.82-0.98; phase_angle (°) its arccosine
//	Hz     49.95-50.05 Hz
//	kWh    energy counters grow every change interval (kvarh likewise),
//	       never go back
//	°C     temperatures 15-30 °C; dew_point from temperature and humidity;
//	       corrections and offsets 0
//	%      humidity 30-70 %; other percentages (THD) 2-8 %
//	ppm    CO2 400-1200 ppm; ppb (VOC) 50-300; lx 50-550; dB 35-55; hPa
//	       1003-1023
//	       other integers (states, settings) a fixed plausible value:
//	       operating_state 4 (MPPT), baud_rate 9600, modbus_unit the unit id
//
// Identity registers ([[identity]]) answer their declared value. Writable
// points start at their plausible value and keep what is written; writes
// to other holding registers and coils are accepted and read back.
// Registers the profile does not map read as 0 (a device that answers
// its whole address range), except those of the points named in
// Options.Missing, which answer exception 2 (illegal data address), as a
// device that does not implement them.
//
// Values depend on the time elapsed since the device was made, in steps of
// the change interval, so a device needs no goroutine of its own.
//
// It is a package apart from sim/modbus because it uses adapters/modbus
// (its codec), whose tests use sim/modbus: sim/modbus must not import it,
// and adapters/modbus must not import this package, not even in tests.
package profile
