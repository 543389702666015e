# osapgw build and test entry points. `make test` is what README and CI run.
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/osapgw/osapgw/internal/version.Version=$(VERSION)

.PHONY: all build test test-deps demo clean

all: build

# As packaged: osapgw without the demo (tag nodemo), so that the daemon
# does not carry the platform emulator; make demo runs the full one.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -tags nodemo -ldflags '$(LDFLAGS)' -o bin/ ./cmd/...

# test-deps installs the real peers the tests talk to, when missing.
test-deps:
	./scripts/test-deps.sh

test: test-deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 40m ./...
	# The store's crash test again as an armhf binary under qemu, where
	# binfmt allows it (the box is often armhf); skips with a message else.
	./scripts/store-arm-test.sh

demo:
	$(GO) run ./cmd/osapgw demo

clean:
	rm -rf bin dist
include packaging/packaging.mk
