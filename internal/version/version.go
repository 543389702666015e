// Package version holds the build's version, set by the linker
// (-X github.com/osapgw/osapgw/internal/version.Version=...).
package version

// Version is the release this binary was built from ("dev" in a plain
// go build).
var Version = "dev"
