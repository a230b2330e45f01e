# Tower — the README's commands. `make demo` and `make test` are the quick start.
SHELL := /bin/bash
SWIFT ?= swift
CONFIG ?= debug
BIN = .build/$(CONFIG)
PROTOC_GEN_SWIFT ?= $(shell command -v protoc-gen-swift 2>/dev/null || echo .build-tools/protoc-gen-swift)

.PHONY: deps build demo test fuzz bench proto clean

deps:
	@bash Deploy/install-deps.sh

build: deps
	$(SWIFT) build -c $(CONFIG)

# The demo renders a marketing short, so it needs ffmpeg, espeak-ng and a CJK font.
demo: build
	@bash Deploy/install-deps.sh --media
	$(BIN)/coordinator demo

test: deps
	$(SWIFT) build
	$(SWIFT) test --parallel --num-workers 2 2>&1 | tee .build/test.log; exit $${PIPESTATUS[0]}

# One million random and mutated frames through the decoder, then random well-formed
# messages from every role and random HTTPS API requests against an in-process coordinator
# (CI runs smaller counts inside the test suite). Any crash, hang or broken promise fails.
fuzz: deps
	$(SWIFT) build -c release --scratch-path .build-release --product tower-bench
	.build-release/release/tower-bench fuzz --cases 1000000
	.build-release/release/tower-bench fuzz-messages --messages 40000 --connections 8
	.build-release/release/tower-bench fuzz-api --requests 4000 --concurrency 4

bench: deps
	$(SWIFT) build -c release --scratch-path .build-release --product tower-bench
	.build-release/release/tower-bench all

# Regenerates Common/Wire/Generated/tower.pb.swift from Common/Wire/tower.proto.
# Needs Debian's protobuf-compiler (install-deps.sh --proto) and protoc-gen-swift, built
# from the swift-protobuf version Package.swift pins.
proto:
	@bash Deploy/install-deps.sh --proto
	@test -x "$(PROTOC_GEN_SWIFT)" || bash Deploy/build-protoc-gen-swift.sh
	protoc --plugin=protoc-gen-swift=$(PROTOC_GEN_SWIFT) --swift_opt=Visibility=Public \
	  --swift_out=Common/Wire/Generated -I Common/Wire Common/Wire/tower.proto

clean:
	rm -rf .build .build-release
