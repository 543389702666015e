// Package profiles is the catalog of device profiles: one TOML file per
// device model, holding its register map (or whatever its kind's adapter
// reads), the class it implements, default event thresholds, operations
// and its usual link settings. A [[device]] block names one with
// profile = "NAME" and gives only what differs: its address and unit.
//
// This package knows a profile's header (name, kind, manufacturer, model,
// description, class, source) and where it comes from; the adapter of its
// kind decodes the rest with Profile.Decode (adapters/modbus does, and its
// ProfileCheck checks a whole profile). docs/profiles.md describes the
// file format.
//
// # Basics
//
// The profiles of profiles/data are embedded in the binary. Load adds the
// user's own from a directory (/etc/osapgw/profiles.d by default, [profiles]
// dir in osapgw.toml): every *.toml file there, other files ignored. A
// user file with the name of an embedded profile replaces it
// (Profile.Overrides says so, and the daemon logs it).
//
// # Guarantees
//
//   - A profile's name is its file's name without .toml, and it names its
//     source (the public register map it was written from).
//   - A class, when given, is one package classes defines.
//   - A Profile is immutable and shared by every device that uses it, and
//     by every Catalog that holds it: the embedded ones are parsed once per
//     process. Memo lets an adapter keep what it compiles from a profile
//     once, for all those devices.
//
// # Caveats
//
// Load checks the header only: a point with a bad key is found when the
// kind's adapter decodes the profile (osapgw check of a device that uses
// it, or osapgw profile check). A user profile that changes takes effect
// at the next start, or the next reload that rebuilds the device.
package profiles
