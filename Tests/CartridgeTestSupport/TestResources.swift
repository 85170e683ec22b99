import CartridgeModel
import Foundation
import XCTest

/// What every test target shares: the real default model loaded once per test process, the
/// reference folder, the release executables, and one rule for downloads that are missing.
///
/// A missing model, embedder or executable skips the test, unless `CARTRIDGES_REQUIRE_MODEL=1`
/// (set by `make test` and CI), in which case it fails it: CI must never pass by skipping.
public enum TestResources {
    /// The checkout's root folder.
    public static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// True when a missing download must fail the test instead of skipping it.
    public static var downloadsRequired: Bool { ProcessInfo.processInfo.environment["CARTRIDGES_REQUIRE_MODEL"] == "1" }

    /// The reference folder: `$CARTRIDGES_REFERENCE`, else `../shared/reference` next to the checkout.
    public static var referenceDirectory: URL {
        if let r = ProcessInfo.processInfo.environment["CARTRIDGES_REFERENCE"], !r.isEmpty { return URL(fileURLWithPath: r) }
        return repository.deletingLastPathComponent().appendingPathComponent("shared/reference")
    }

    /// Parses a JSON object file of the reference folder.
    public static func reference(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: referenceDirectory.appendingPathComponent(name))
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw CocoaError(.fileReadCorruptFile)
        }
        return object
    }

    /// The value of a load done once per process, or the skip (or failure) its error calls for.
    public static func require<T>(_ loaded: Result<T, Error>, _ what: String) throws -> T {
        switch loaded {
        case let .success(value): return value
        case let .failure(error):
            if error is XCTSkip || downloadsRequired { throw error }
            throw XCTSkip("\(what) unavailable (\(error)); run `make setup`")
        }
    }

    private static let loadedModel: Result<LanguageModel, Error> = Result { try LanguageModel() }

    /// The default model, loaded once per test process.
    public static func model() throws -> LanguageModel { try require(loadedModel, "default model") }

    /// A release executable of this package (`make test` builds them before the tests run).
    public static func executable(_ name: String) throws -> URL {
        let url = repository.appendingPathComponent(".build/release/\(name)")
        guard FileManager.default.isExecutableFile(atPath: url.path) else {
            if downloadsRequired { throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: url.path, NSLocalizedDescriptionKey: "no executable at \(url.path): run `make build`"]) }
            throw XCTSkip("\(name) is not built; run `make build`")
        }
        return url
    }

    /// A new empty folder under the temporary directory.
    public static func temporaryDirectory(_ label: String = "cartridges-test") throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("\(label)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }
}
