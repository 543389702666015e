package config

import "github.com/osapgw/osapgw/profiles"

// Profiles is the [profiles] section: where the user's own device
// profiles are (docs/profiles.md).
type Profiles struct {
	// Dir holds the user's profiles, one *.toml file each; a file with the
	// name of an embedded profile replaces it. Default
	// /etc/osapgw/profiles.d; a directory that does not exist holds none.
	Dir string `toml:"dir"`
}

// LoadProfiles returns the embedded profiles and the user's from
// [profiles] dir. It reads the directory: call it where Check may touch
// the file system, not from Parse. The error joins the problems of the
// user's files that do not parse; the catalog holds the others.
func (c *Config) LoadProfiles() (*profiles.Catalog, error) {
	return profiles.Load(c.Profiles.Dir)
}
