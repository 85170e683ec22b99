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
        .executable(name: "cartridge", targets: ["CartridgeCLI"]),
        .executable(name: "cartridge-bench", targets: ["CartridgeBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
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
                dependencies: ["CartridgeKernels", .product(name: "Logging", package: "swift-log")],
                swiftSettings: fast),
        .target(name: "CartridgeTraining",
                dependencies: ["CartridgeKernels", "CartridgeModel"],
                swiftSettings: fast),
        .executableTarget(name: "CartridgeCLI",
                          dependencies: ["CartridgeModel", "CartridgeTraining",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                         .product(name: "Logging", package: "swift-log")],
                          swiftSettings: fast),
        .executableTarget(name: "CartridgeBench",
                          dependencies: ["CartridgeModel", "CartridgeTraining",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: fast),
        .testTarget(name: "CartridgeKernelsTests", dependencies: ["CartridgeKernels"]),
        .testTarget(name: "CartridgeTrainingTests", dependencies: ["CartridgeTraining", "CartridgeModel", "CartridgeKernels"]),
        .testTarget(name: "CartridgeModelTests", dependencies: ["CartridgeModel"],
                    resources: [.copy("Fixtures")]),
    ]
)
