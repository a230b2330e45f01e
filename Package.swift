// swift-tools-version: 6.1
import PackageDescription

// Tower: one coordinator, many TLS-authenticated workers, one gateway.
// The layout is fixed by ../shared/DESIGN.md: Common (libraries every process links),
// Coordinator, Worker, Tests, Deploy, Benchmarks.

/// NIO-based targets are compiled in the Swift 5 language mode: their handlers are
/// event-loop confined, which NIO checks at run time, and the strict Sendable model of
/// Swift 6 adds no safety there. Pure libraries (Learning) use Swift 6.
let nioTargetSettings: [SwiftSetting] = [.swiftLanguageMode(.v5)]

let package = Package(
    name: "Tower",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "coordinator", targets: ["coordinator"]),
        .executable(name: "worker", targets: ["worker"]),
        .executable(name: "gateway", targets: ["gateway"]),
        .library(name: "Wire", targets: ["Wire"]),
        .library(name: "Learning", targets: ["Learning"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
    ],
    targets: [
        // MARK: Common
        .target(
            name: "Wire",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            path: "Common/Wire",
            exclude: ["tower.proto"],
            swiftSettings: nioTargetSettings
        ),
        .target(
            name: "Learning",
            path: "Common/Learning"
        ),
        // Prometheus text at /metrics for the coordinator and the worker: a registry with
        // each metric's help text, and a small plaintext HTTP listener.
        .target(
            name: "Observability",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            path: "Common/Observability",
            swiftSettings: nioTargetSettings
        ),
        // Upload clients for finished shorts (YouTube resumable upload, Instagram Reels).
        // Foundation's URLSession only: no NIO, so Swift 6 language mode.
        .target(
            name: "MediaUpload",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Common/Media/Upload"
        ),
        // Marketing shorts: photo analysis, script, speech, ffmpeg render. Foundation only;
        // it drives the real ffmpeg/ffprobe/espeak-ng binaries as subprocesses.
        .target(
            name: "Media",
            path: "Common/Media",
            exclude: ["Upload"]
        ),

        // MARK: Coordinator
        .target(
            name: "CoordinatorKit",
            dependencies: [
                "Wire",
                "Learning",
                "Media",
                "MediaUpload",
                "Observability",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Coordinator/CoordinatorKit",
            swiftSettings: nioTargetSettings
        ),
        .executableTarget(
            name: "coordinator",
            dependencies: [
                "CoordinatorKit",
                "Wire",
                "Learning",
                "Media",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Coordinator/coordinator",
            swiftSettings: nioTargetSettings
        ),

        // MARK: Worker
        .target(
            name: "WorkerKit",
            dependencies: [
                "Wire",
                "Learning",
                "Media",
                "Observability",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Worker/WorkerKit",
            swiftSettings: nioTargetSettings
        ),
        .executableTarget(
            name: "worker",
            dependencies: [
                "WorkerKit",
                "Wire",
                "Observability",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Worker/worker",
            swiftSettings: nioTargetSettings
        ),

        // MARK: Benchmarks
        .target(
            name: "GatewayKit",
            dependencies: [
                "Wire",
                "Learning",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Gateway/GatewayKit",
            swiftSettings: nioTargetSettings
        ),
        .executableTarget(
            name: "gateway",
            dependencies: [
                "GatewayKit",
                "Wire",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Gateway/gateway",
            swiftSettings: nioTargetSettings
        ),

        .executableTarget(
            name: "tower-bench",
            dependencies: [
                "Wire", "CoordinatorKit", "WorkerKit", "Learning", "Media",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/tower-bench",
            swiftSettings: nioTargetSettings
        ),

        .executableTarget(
            name: "learning-bench",
            dependencies: ["Learning"],
            path: "Benchmarks/learning/bench"
        ),

        // MARK: Tests
        .testTarget(
            name: "WireTests",
            dependencies: [
                "Wire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            path: "Tests/WireTests",
            swiftSettings: nioTargetSettings
        ),
        .testTarget(
            name: "LearningTests",
            dependencies: ["Learning"],
            path: "Tests/LearningTests"
        ),
        .testTarget(
            name: "MediaUploadTests",
            dependencies: [
                "MediaUpload",
                "CoordinatorKit",
                "Wire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/MediaUploadTests",
            swiftSettings: nioTargetSettings
        ),
        .testTarget(
            name: "MediaTests",
            dependencies: [
                "Media",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Tests/MediaTests",
            swiftSettings: nioTargetSettings
        ),
        .testTarget(
            name: "CoordinatorKitTests",
            dependencies: ["CoordinatorKit", "Wire", "WorkerKit", "MediaUpload"],
            path: "Tests/CoordinatorKitTests",
            swiftSettings: nioTargetSettings
        ),
        .testTarget(
            name: "ClusterTests",
            dependencies: ["CoordinatorKit", "Wire", "WorkerKit", "Media", "coordinator", "worker",
                           .product(name: "NIOPosix", package: "swift-nio"), .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                           .product(name: "Logging", package: "swift-log")],
            path: "Tests/ClusterTests",
            swiftSettings: nioTargetSettings
        ),
        .testTarget(
            name: "GatewayTests",
            dependencies: ["GatewayKit", "CoordinatorKit", "Wire", "Learning", "gateway",
                           .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                           .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "Logging", package: "swift-log")],
            path: "Tests/GatewayTests",
            swiftSettings: nioTargetSettings
        ),
    ]
)
