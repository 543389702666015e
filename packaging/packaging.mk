# packaging.mk: Debian packages. Included by the Makefile.
#
#   make deb          static binaries and one .deb per architecture per
#                     package (osapgw, osap-platform) into $(DIST)
#   make deb-amd64    one architecture (deb-arm64, deb-armhf likewise)
#   make deb-lint     lintian on the packages in $(DIST)
#
# nfpm is built from its own module (tools/nfpm), so it never enters the
# daemon's dependency graph. Override DEB_VERSION to build a given version
# (the default derives it from `git describe`, see debversion.sh).

GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
DIST ?= dist
DEB_ARCHES ?= amd64 arm64 armhf
DEB_VERSION ?= $(shell ./packaging/debversion.sh '$(VERSION)')
DEB_MAINTAINER ?= osapgw maintainers <maintainers@osapgw.invalid>
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || date +%s)
export SOURCE_DATE_EPOCH

DEB_STAGE := $(DIST)/.stage
DEB_NFPM := $(DEB_STAGE)/nfpm
DEB_LDFLAGS := -s -w -X github.com/osapgw/osapgw/internal/version.Version=$(VERSION)
# osap-platform is packaged once its command exists.
DEB_PACKAGES := osapgw $(if $(wildcard cmd/osap-platform/*.go),osap-platform)
DEB_GOENV_amd64 := GOARCH=amd64
DEB_GOENV_arm64 := GOARCH=arm64
DEB_GOENV_armhf := GOARCH=arm GOARM=7

.PHONY: deb deb-lint deb-common $(addprefix deb-,$(DEB_ARCHES))

deb: $(addprefix deb-,$(DEB_ARCHES))

$(DEB_NFPM): tools/nfpm/go.mod tools/nfpm/go.sum
	@mkdir -p $(@D)
	GOFLAGS=-mod=readonly $(GO) -C tools/nfpm build -o $(abspath $@) github.com/goreleaser/nfpm/v2/cmd/nfpm

# Architecture-independent parts: the man pages.
deb-common:
	@mkdir -p $(DEB_STAGE)/man
	for p in $(DEB_PACKAGES); do gzip -9nc packaging/man/$$p.1 > $(DEB_STAGE)/man/$$p.1.gz || exit 1; done

$(addprefix deb-,$(DEB_ARCHES)): deb-%: deb-common $(DEB_NFPM)
	@mkdir -p $(DEB_STAGE)/$*
	@case '$(DEB_VERSION)' in [0-9]*) ;; *) echo "packaging: DEB_VERSION '$(DEB_VERSION)' must start with a digit" >&2; exit 1;; esac
	for p in $(DEB_PACKAGES); do \
	  CGO_ENABLED=0 GOOS=linux $(DEB_GOENV_$*) $(GO) build -trimpath -ldflags '$(DEB_LDFLAGS)' \
	    -o $(DEB_STAGE)/$*/$$p ./cmd/$$p || exit 1; \
	  mkdir -p $(DEB_STAGE)/$*/doc/$$p; \
	  ./packaging/gen-copyright.sh '$(DEB_MAINTAINER)' $(DEB_STAGE)/$*/$$p > $(DEB_STAGE)/$*/doc/$$p/copyright || exit 1; \
	  sed -e "s|@PACKAGE@|$$p|" -e 's|@VERSION@|$(DEB_VERSION)|' -e 's|@GITVERSION@|$(VERSION)|' \
	    -e 's|@MAINTAINER@|$(DEB_MAINTAINER)|' -e "s|@DATE@|$$(date -u -R -d @$(SOURCE_DATE_EPOCH))|" \
	    packaging/changelog.in | gzip -9n > $(DEB_STAGE)/$*/doc/$$p/changelog.gz || exit 1; \
	  DEB_ARCH=$* DEB_VERSION='$(DEB_VERSION)' DEB_MAINTAINER='$(DEB_MAINTAINER)' STAGE='$(DEB_STAGE)' \
	    $(DEB_NFPM) package --config packaging/nfpm-$$p.yaml --packager deb --target $(DIST)/ || exit 1; \
	done

deb-lint:
	lintian --fail-on error $(DIST)/*.deb
