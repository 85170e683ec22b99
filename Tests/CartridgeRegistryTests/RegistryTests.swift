import CartridgeFormat
import CartridgeKernels
import CartridgeRegistry
import CartridgeTestSupport
import Foundation
import XCTest

/// The SQLite registry: immutable numbered versions stored by SHA-256, aliases and splits,
/// rollback through an alias' history, removal, and two registries on one folder at once.
final class RegistryTests: XCTestCase {
    static let model = ModelIdentity(name: "Test-Model", fingerprint: String(repeating: "0123456789abcdef", count: 4))
    static let other = ModelIdentity(name: "Other-Model", fingerprint: String(repeating: "fedcba9876543210", count: 4))

    /// A tiny valid cartridge (2 layers, 1 KV head, 4 slots, head dimension 8); `seed` varies its values.
    static func cartBytes(seed: Float, model: ModelIdentity = model) throws -> [UInt8] {
        let (layers, heads, length, dim) = (2, 1, 4, 8)
        let meta = CartridgeMetadata(
            name: "t", model: model, layers: layers, kvHeads: heads, headDim: dim, length: length, frozenSlots: 1, dtype: .f16,
            rope: RoPEConvention(layout: "adjacent-pairs", base: 100000, positions: "0..<\(length)", keysRotated: true),
            tokenizerHash: String(repeating: "9", count: 64), toolVersion: "test", createdAt: "2026-01-01T00:00:00Z",
            recipe: [:], results: [:], sources: [], embeddingModel: "none", embeddingDimension: 0, chunks: [])
        let n = layers * heads * length * dim
        let keys = (0..<n).map { Float($0) * 0.01 + seed }
        return try CartFile.encode(Cartridge(metadata: meta, keys: keys, values: keys.map { -$0 }, retrievalVectors: []))
    }

    private func registry() throws -> SQLiteRegistry {
        let dir = try TestResources.temporaryDirectory("registry")
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return try SQLiteRegistry(directory: dir, model: Self.model)
    }

    func testPushesNumberVersionsAndStoreBytesByTheirSHA256() throws {
        let r = try registry()
        let a = try r.push(name: "docs", bytes: Self.cartBytes(seed: 1))
        let b = try r.push(name: "docs", bytes: Self.cartBytes(seed: 2))
        let c = try r.push(name: "docs", bytes: Self.cartBytes(seed: 1))  // same bytes again: a new version, one blob
        XCTAssertEqual([a.version, b.version, c.version], [1, 2, 3])
        XCTAssertEqual([a.parent, b.parent, c.parent], [nil, 1, 2])
        XCTAssertEqual(a.sha256, c.sha256)
        XCTAssertNotEqual(a.sha256, b.sha256)
        XCTAssertEqual(try Array(Data(contentsOf: r.file(of: b))), try Self.cartBytes(seed: 2))
        XCTAssertTrue(r.file(of: a).path.hasSuffix("blobs/\(a.sha256.prefix(2))/\(a.sha256).cart"))
        XCTAssertEqual(try r.versions(of: "docs").map(\.version), [1, 2, 3])
        _ = try r.push(name: "alpha", bytes: Self.cartBytes(seed: 3))
        XCTAssertEqual(try r.names(), ["alpha", "docs"])
        // without a stable alias, NAME means the newest version
        XCTAssertEqual(try r.resolve(CartridgeReference(parsing: "docs"), stickyKey: nil).version, 3)
        XCTAssertEqual(try r.resolve(CartridgeReference(parsing: "docs@2"), stickyKey: nil).sha256, b.sha256)
    }

    func testBadNamesReferencesAndFilesAreTypedErrors() throws {
        let r = try registry()
        for bad in ["", "Docs", "-x", "a/b", "../etc", String(repeating: "a", count: 65)] {
            XCTAssertThrowsError(try r.push(name: bad, bytes: Self.cartBytes(seed: 1)), bad) { error in
                guard case .invalidName? = error as? RegistryError else { return XCTFail("\(error)") }
            }
        }
        for bad in ["docs@0", "docs@x", "docs:", "docs:Canary", "a@1@2"] {
            XCTAssertThrowsError(try CartridgeReference(parsing: bad), bad)
        }
        XCTAssertThrowsError(try r.push(name: "docs", bytes: Array("not a cartridge".utf8)))
        XCTAssertThrowsError(try r.push(name: "docs", bytes: Self.cartBytes(seed: 1, model: Self.other))) { error in
            XCTAssertTrue("\(error)".contains("Other-Model") && "\(error)".contains("Test-Model"), "\(error)")
        }
        XCTAssertEqual(try r.names(), [], "nothing was stored")
        XCTAssertThrowsError(try r.resolve(CartridgeReference(parsing: "docs"), stickyKey: nil)) { error in
            XCTAssertEqual(error as? RegistryError, .unknownName("docs"))
        }
    }

    func testAliasesSplitsAndRollbackThroughTheHistory() throws {
        let r = try registry()
        for seed in 1...4 { _ = try r.push(name: "docs", bytes: Self.cartBytes(seed: Float(seed))) }
        try r.setAlias("stable", of: "docs", to: .version(2))
        XCTAssertEqual(try r.resolve(CartridgeReference(parsing: "docs"), stickyKey: nil).version, 2, "NAME means its stable alias")
        try r.setAlias("stable", of: "docs", to: .version(3))
        try r.setAlias("stable", of: "docs", to: .version(4))
        XCTAssertEqual(try r.rollback(alias: "stable", of: "docs"), .version(3))
        XCTAssertEqual(try r.rollback(alias: "stable", of: "docs"), .version(2))
        XCTAssertThrowsError(try r.rollback(alias: "stable", of: "docs")) { error in
            XCTAssertEqual(error as? RegistryError, .noEarlierTarget(name: "docs", alias: "stable"))
        }
        XCTAssertThrowsError(try r.setAlias("stable", of: "docs", to: .version(9))) { error in
            XCTAssertEqual(error as? RegistryError, .unknownVersion(name: "docs", version: 9))
        }

        let split = try AliasTarget.parseSplit("3:90,4:10")
        try r.setAlias("canary", of: "docs", to: split)
        var counts: [Int: Int] = [:]
        for _ in 0..<2000 { counts[try r.resolve(CartridgeReference(parsing: "docs:canary"), stickyKey: nil).version, default: 0] += 1 }
        XCTAssertEqual(Set(counts.keys), [3, 4])
        XCTAssertEqual(Double(counts[4]!) / 2000, 0.10, accuracy: 0.03, "\(counts)")
        // sticky per user: the same user always gets the same version, and users spread by weight
        var perUser: [Int: Int] = [:]
        for u in 0..<1000 {
            let first = try r.resolve(CartridgeReference(parsing: "docs:canary"), stickyKey: "user-\(u)").version
            for _ in 0..<3 { XCTAssertEqual(try r.resolve(CartridgeReference(parsing: "docs:canary"), stickyKey: "user-\(u)").version, first) }
            perUser[first, default: 0] += 1
        }
        XCTAssertEqual(Double(perUser[4] ?? 0) / 1000, 0.10, accuracy: 0.04, "\(perUser)")
        for bad in ["3:90,3:10", "3:0", "3", "x:1", ""] { XCTAssertThrowsError(try AliasTarget.parseSplit(bad), bad) }
        XCTAssertEqual(try r.aliases(of: "docs").map(\.alias), ["canary", "stable"])
    }

    func testAVersionAnAliasPointsAtCannotBeRemoved() throws {
        let r = try registry()
        let v1 = try r.push(name: "docs", bytes: Self.cartBytes(seed: 1))
        _ = try r.push(name: "docs", bytes: Self.cartBytes(seed: 2))
        try r.setAlias("canary", of: "docs", to: .split([.init(version: 1, weight: 1), .init(version: 2, weight: 1)]))
        XCTAssertThrowsError(try r.remove(name: "docs", version: 1)) { error in
            XCTAssertEqual(error as? RegistryError, .versionInUse(name: "docs", version: 1, aliases: ["canary"]))
        }
        try r.setAlias("canary", of: "docs", to: .version(2))
        try r.remove(name: "docs", version: 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: r.file(of: v1).path), "no version names those bytes any more")
        XCTAssertEqual(try r.versions(of: "docs").map(\.version), [2])
        XCTAssertThrowsError(try r.rollback(alias: "canary", of: "docs"), "the split naming version 1 left the history with it")
        XCTAssertEqual(try r.push(name: "docs", bytes: Self.cartBytes(seed: 3)).version, 3, "numbers are never reused")
        XCTAssertThrowsError(try r.remove(name: "docs", version: 1))
    }

    func testTwoRegistriesOnOneFolderPushConcurrentlyWithoutLosingAVersion() throws {
        let dir = try TestResources.temporaryDirectory("registry")
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = try SQLiteRegistry(directory: dir), b = try SQLiteRegistry(directory: dir)
        let blobs = try (0..<20).map { try Self.cartBytes(seed: Float($0)) }
        let errors = NSLock()
        nonisolated(unsafe) var failures: [String] = []
        DispatchQueue.concurrentPerform(iterations: 20) { i in
            do { _ = try (i % 2 == 0 ? a : b).push(name: "docs", bytes: blobs[i]) } catch {
                errors.lock(); failures.append("\(error)"); errors.unlock()
            }
        }
        XCTAssertEqual(failures, [])
        let versions = try SQLiteRegistry(directory: dir).versions(of: "docs")
        XCTAssertEqual(versions.map(\.version), Array(1...20))
        XCTAssertEqual(Set(versions.map(\.sha256)).count, 20)
    }
}
