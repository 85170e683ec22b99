import CartridgeModel
import Foundation
import XCTest

/// Shared access to the real default model and the reference data, loaded once per test process.
enum TestModel {
    private static let loaded: Result<LanguageModel, Error> = Result { try LanguageModel() }

    /// The reference folder: `$CARTRIDGES_REFERENCE`, else `../shared/reference` next to the checkout.
    static var referenceDirectory: URL {
        if let r = ProcessInfo.processInfo.environment["CARTRIDGES_REFERENCE"] { return URL(fileURLWithPath: r) }
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return repo.deletingLastPathComponent().appendingPathComponent("shared/reference")
    }

    /// The default model; skips the test when it is not downloaded, unless `CARTRIDGES_REQUIRE_MODEL=1`
    /// (set by `make test`), in which case a missing model fails the test.
    static func model() throws -> LanguageModel {
        switch loaded {
        case let .success(m): return m
        case let .failure(e):
            if ProcessInfo.processInfo.environment["CARTRIDGES_REQUIRE_MODEL"] == "1" { throw e }
            throw XCTSkip("default model unavailable (\(e)); run `make setup`")
        }
    }

    static func tokenizer() throws -> Tokenizer { try model().tokenizer }

    /// Parses a JSON file of the reference folder.
    static func reference(_ name: String) throws -> [String: Any] {
        let url = referenceDirectory.appendingPathComponent(name)
        let data = try Data(contentsOf: url)
        guard let obj = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw CocoaError(.fileReadCorruptFile)
        }
        return obj
    }
}
