#!/usr/bin/env bash
# Builds protoc-gen-swift from the swift-protobuf release Package.swift uses, into
# .build-tools/. Only needed to regenerate the committed protocol code (`make proto`).
set -euo pipefail
version=1.39.0
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone --quiet --depth 1 --branch "$version" https://github.com/apple/swift-protobuf.git "$work/swift-protobuf"
swift build -c release --package-path "$work/swift-protobuf" --product protoc-gen-swift
mkdir -p "$root/.build-tools"
cp "$work/swift-protobuf/.build/release/protoc-gen-swift" "$root/.build-tools/"
echo "protoc-gen-swift $version is at .build-tools/protoc-gen-swift"
