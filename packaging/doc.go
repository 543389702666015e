// Package packaging holds the Debian packaging of osapgw (nfpm
// configurations, systemd units, maintainer scripts, man pages, built by
// `make deb` through packaging.mk) and, in its tests, the checks of what it
// builds:
//
//   - every .deb is inspected with dpkg-deb (files, modes, owners,
//     conffiles, architecture, dependencies) and passes lintian;
//   - the unit's `systemd-analyze security` exposure stays at 2.0 or less;
//   - the man page covers every osapgw subcommand;
//   - with root, systemd-nspawn and a debootstrap'ed Debian bookworm root
//     (cached under /var/cache/osapgw-test), each package is installed in a
//     booted container, rebooted, upgraded, removed and purged.
//
// The tests skip with a message when a tool or a privilege is missing, and
// under -short. Environment:
//
//	OSAPGW_DEB_DIST=dir      inspect the .debs in dir instead of building them
//	OSAPGW_DEB_ARCHES=list   architectures to build and check (default "amd64 arm64 armhf")
//	OSAPGW_NSPAWN=0          skip the container tests; =1 fails instead of skipping when they cannot run
//	OSAPGW_ROOTFS_CACHE=dir  where the bookworm roots are cached (default /var/cache/osapgw-test)
package packaging
