// swift-tools-version:6.0
import PackageDescription

// Numeric code is only usable when optimized; these flags apply to release builds.
let fast: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release))]

let package = Package(
    name: "Cartridges",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "CartridgeModel", targets: ["CartridgeModel"]),
        .library(name: "CartridgeTraining", targets: ["CartridgeTraining"]),
        .library(name: "CartridgeFormat", targets: ["CartridgeFormat"]),
        .library(name: "CartridgeEmbedding", targets: ["CartridgeEmbedding"]),
        .library(name: "CartridgeCorpus", targets: ["CartridgeCorpus"]),
        .library(name: "CartridgeRuntime", targets: ["CartridgeRuntime"]),
        .library(name: "CartridgeEvaluation", targets: ["CartridgeEvaluation"]),
        .library(name: "CartridgeCompiler", targets: ["CartridgeCompiler"]),
        .executable(name: "cartridge", targets: ["CartridgeCLI"]),
        .executable(name: "cartridge-bench", targets: ["CartridgeBench"]),
        .executable(name: "cartridge-compile", targets: ["CartridgeCompile"]),
        .executable(name: "runtime-example", targets: ["RuntimeExample"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.0.0"),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd",
                       providers: [.apt(["libzstd-dev"])]),
        .target(name: "CartridgeKernels",
                dependencies: ["CBLAS", .product(name: "Logging", package: "swift-log")],
                swiftSettings: fast),
        .target(name: "CartridgeModel",
                dependencies: ["CartridgeKernels", .product(name: "Crypto", package: "swift-crypto"),
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: fast),
        .target(name: "CartridgeTraining",
                dependencies: ["CartridgeKernels", "CartridgeModel"],
                swiftSettings: fast),
        .target(name: "CartridgeFormat",
                dependencies: ["CZstd", "CartridgeKernels", .product(name: "Crypto", package: "swift-crypto")],
                swiftSettings: fast),
        .target(name: "CartridgeEmbedding",
                dependencies: ["CartridgeKernels", .product(name: "Logging", package: "swift-log")],
                swiftSettings: fast),
        // Documents in, cartridge pieces out: ingest, retrieval passages, untrained cartridges.
        .target(name: "CartridgeCorpus",
                dependencies: ["CartridgeKernels", "CartridgeModel", "CartridgeFormat", "CartridgeEmbedding",
                               .product(name: "Crypto", package: "swift-crypto"),
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: fast),
        // What a user embeds to serve cartridges.
        .target(name: "CartridgeRuntime",
                dependencies: ["CartridgeKernels", "CartridgeModel", "CartridgeFormat", "CartridgeEmbedding",
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: fast),
        .target(name: "CartridgeEvaluation",
                dependencies: ["CartridgeKernels", "CartridgeModel"],
                swiftSettings: fast),
        .target(name: "CartridgeCompiler",
                dependencies: ["CartridgeKernels", "CartridgeModel", "CartridgeTraining", "CartridgeFormat", "CartridgeEmbedding",
                               "CartridgeCorpus",
                               .product(name: "Crypto", package: "swift-crypto"),
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: fast),
        .executableTarget(name: "CartridgeCompile",
                          dependencies: ["CartridgeCompiler", "CartridgeCorpus", "CartridgeEmbedding", "CartridgeFormat", "CartridgeModel", "CartridgeKernels",
                                         "CartridgeTraining",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                         .product(name: "Logging", package: "swift-log")],
                          swiftSettings: fast),
        .executableTarget(name: "RuntimeExample",
                          dependencies: ["CartridgeRuntime", "CartridgeModel", "CartridgeKernels"],
                          path: "Examples/RuntimeExample", swiftSettings: fast),
        .executableTarget(name: "CartridgeCLI",
                          dependencies: ["CartridgeKernels", "CartridgeModel", "CartridgeTraining", "CartridgeFormat", "CartridgeEmbedding",
                                         "CartridgeCorpus", "CartridgeRuntime", "CartridgeEvaluation",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                         .product(name: "Logging", package: "swift-log")],
                          swiftSettings: fast),
        .executableTarget(name: "CartridgeBench",
                          dependencies: ["CartridgeKernels", "CartridgeModel", "CartridgeTraining", "CartridgeFormat", "CartridgeCorpus",
                                         "CartridgeRuntime",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: fast),
        // The real model, the reference folder and the skip-or-fail rule, shared by the test targets.
        .target(name: "CartridgeTestSupport", dependencies: ["CartridgeModel"], path: "Tests/CartridgeTestSupport"),
        .testTarget(name: "CartridgeKernelsTests", dependencies: ["CartridgeTestSupport", "CartridgeKernels"]),
        .testTarget(name: "CartridgeTrainingTests", dependencies: ["CartridgeTestSupport", "CartridgeTraining", "CartridgeModel", "CartridgeKernels", "CartridgeEvaluation"]),
        .testTarget(name: "CartridgeFormatTests", dependencies: ["CartridgeFormat", "CartridgeKernels"]),
        .testTarget(name: "CartridgeEmbeddingTests", dependencies: ["CartridgeTestSupport", "CartridgeEmbedding", "CartridgeKernels"]),
        .testTarget(name: "CartridgeCompilerTests", dependencies: ["CartridgeTestSupport", "CartridgeCompiler", "CartridgeRuntime", "CartridgeModel", "CartridgeTraining", "CartridgeFormat", "CartridgeKernels"]),
        .testTarget(name: "CartridgeRuntimeTests", dependencies: ["CartridgeTestSupport", "CartridgeRuntime", "CartridgeCorpus", "CartridgeEvaluation",
                                                                "CartridgeFormat", "CartridgeModel", "CartridgeKernels"]),
        .testTarget(name: "CartridgeModelTests", dependencies: ["CartridgeTestSupport", "CartridgeModel", "CartridgeKernels"],
                    resources: [.copy("Fixtures")]),
    ]
)

// libFuzzer targets (Fuzz/), seen only when scripts/fuzz.sh (`make fuzz`) builds them with
// -sanitize=fuzzer: they have no main (libFuzzer brings it), so a plain build never sees them.
if Context.environment["CARTRIDGES_FUZZ"] == "1" {
    package.targets += [
        .executableTarget(name: "GGUFFuzzer", dependencies: ["CartridgeModel"],
                          path: "Fuzz/GGUFFuzzer"),
        .executableTarget(name: "CartFuzzer", dependencies: ["CartridgeFormat", .product(name: "Crypto", package: "swift-crypto")],
                          path: "Fuzz/CartFuzzer"),
    ]
}
