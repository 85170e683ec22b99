import CartridgeModel
import Foundation
import XCTest

/// What every test target shares: the real default model loaded once per test process, the
/// reference vectors, the release executables, and one rule for downloads that are missing.
///
/// A missing model, embedder or executable skips the test, unless `CARTRIDGES_REQUIRE_MODEL=1`
/// (set by `make test` and CI), in which case it fails it: CI must never pass by skipping. Every
/// skip is counted, and the test run ends with one line saying how many were skipped and why.
public enum TestResources {
    /// The checkout's root folder.
    public static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// True when a missing download must fail the test instead of skipping it.
    public static var downloadsRequired: Bool { ProcessInfo.processInfo.environment["CARTRIDGES_REQUIRE_MODEL"] == "1" }

    /// The reference vectors of other implementations, kept with the tests (`Tests/Reference/README.md`).
    public static var referenceDirectory: URL { repository.appendingPathComponent("Tests/Reference") }

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
            throw SkipReport.skip(what, because: "\(error)")
        }
    }

    /// The path of a downloaded file, or the skip (or failure) its absence calls for.
    public static func requireFile(_ path: String, _ what: String) throws -> String {
        guard FileManager.default.fileExists(atPath: path) else {
            if downloadsRequired { throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: path, NSLocalizedDescriptionKey: "\(what) is not installed at \(path): run `make setup`"]) }
            throw SkipReport.skip(what, because: "no file at \(path)")
        }
        return path
    }

    private static let loadedModel: Result<LanguageModel, Error> = Result { try LanguageModel() }

    /// The default model, loaded once per test process.
    public static func model() throws -> LanguageModel { try require(loadedModel, "default model") }

    /// A release executable of this package (`make test` builds them before the tests run).
    public static func executable(_ name: String) throws -> URL {
        let url = repository.appendingPathComponent(".build/release/\(name)")
        guard FileManager.default.isExecutableFile(atPath: url.path) else {
            if downloadsRequired { throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: url.path, NSLocalizedDescriptionKey: "no executable at \(url.path): run `make build`"]) }
            throw SkipReport.skip(name, because: "not built", advice: "make build")
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
