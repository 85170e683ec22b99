@testable import CartridgeFormat
import Foundation
import XCTest

final class AtomicWriteTests: XCTestCase {
    private var directory: URL!
    private var url: URL!

    override func setUpWithError() throws {
        directory = try Fixture.temporaryDirectory()
        url = directory.appendingPathComponent("good.cart")
    }

    override func tearDownWithError() throws {
        chmod(directory.path, 0o755)
        try? FileManager.default.removeItem(at: directory)
    }

    private func contents() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
    }

    func testWriteLeavesOnlyTheFinalFile() throws {
        try CartFile.write(Fixture.cartridge(), to: url)
        XCTAssertEqual(try contents(), ["good.cart"])
        try CartFile.write(Fixture.cartridge(seed: 2), to: url, dtype: .f32)  // replace
        XCTAssertEqual(try contents(), ["good.cart"])
        XCTAssertEqual(try CartFile.read(from: url).metadata.dtype, .f32)
    }

    func testFailureBeforeRenameKeepsTheOldFileAndRemovesTheTemporary() throws {
        try CartFile.write(Fixture.cartridge(), to: url)
        let old = try Data(contentsOf: url)
        struct Injected: Error {}
        var sawTemporary = false
        XCTAssertThrowsError(try CartFile.write(Fixture.cartridge(seed: 5), to: url, dtype: .f32, compressionLevel: 3) { temporary in
            // the temporary file sits beside the target and is already complete
            XCTAssertEqual(URL(fileURLWithPath: temporary).deletingLastPathComponent().standardizedFileURL.path,
                           self.directory.standardizedFileURL.path)
            XCTAssertNoThrow(try CartFile.read(from: URL(fileURLWithPath: temporary)))
            sawTemporary = true
            throw Injected()
        }) { XCTAssertTrue($0 is Injected) }
        XCTAssertTrue(sawTemporary)
        XCTAssertEqual(try Data(contentsOf: url), old)
        XCTAssertEqual(try contents(), ["good.cart"])
    }

    func testInvalidShapeNeverTouchesTheOldFile() throws {
        try CartFile.write(Fixture.cartridge(), to: url)
        let old = try Data(contentsOf: url)
        var bad = Fixture.cartridge(seed: 3)
        bad.keys.removeLast()
        XCTAssertEqual(cartError { try CartFile.write(bad, to: self.url) },
                       .shapeMismatch(what: "keys (layers × kvHeads × length × headDim)", expected: 64, found: 63))
        var badMeta = Fixture.cartridge(seed: 3)
        badMeta.metadata.chunks[0].source = 9
        guard case .invalidCartridge = cartError({ try CartFile.write(badMeta, to: self.url) }) else { return XCTFail() }
        XCTAssertEqual(try Data(contentsOf: url), old)
        XCTAssertEqual(try contents(), ["good.cart"])
    }

    func testValueTooLargeForTheDTypeIsRefusedAndTheOldFileKept() throws {
        try CartFile.write(Fixture.cartridge(), to: url)
        let old = try Data(contentsOf: url)
        var big = Fixture.cartridge(dtype: .f32, seed: 4)
        big.values[10] = 70000
        let error = cartError { try CartFile.write(big, to: self.url, dtype: .f16) }
        XCTAssertTrue(error?.description.contains("values[10] = 70000.0 is too large for f16") ?? false, "\(String(describing: error))")
        XCTAssertNoThrow(try CartFile.write(big, to: directory.appendingPathComponent("big.cart"), dtype: .bf16))
        big.keys[0] = .nan
        guard case .invalidCartridge = cartError({ try CartFile.write(big, to: self.url, dtype: .f32) }) else { return XCTFail() }
        guard case .invalidCartridge = cartError({ try CartFile.write(Fixture.cartridge(), to: self.url, compressionLevel: 1000) }) else { return XCTFail() }
        XCTAssertEqual(try Data(contentsOf: url), old)
        XCTAssertEqual(try contents(), ["big.cart", "good.cart"])
    }

    func testUnwritableDestinationGivesAnIOErrorAndKeepsTheOldFile() throws {
        let missing = directory.appendingPathComponent("no/such/dir/x.cart")
        guard case .io = cartError({ try CartFile.write(Fixture.cartridge(), to: missing) }) else { return XCTFail() }
        // a directory where the file should go: the rename fails, the temporary is removed
        let dirTarget = directory.appendingPathComponent("sub.cart")
        try FileManager.default.createDirectory(at: dirTarget, withIntermediateDirectories: false)
        try Data("x".utf8).write(to: dirTarget.appendingPathComponent("keep"))
        guard case .io = cartError({ try CartFile.write(Fixture.cartridge(), to: dirTarget) }) else { return XCTFail() }
        XCTAssertEqual(try contents(), ["sub.cart"])

        // a read-only directory (root ignores permissions, so only checked for other users)
        try CartFile.write(Fixture.cartridge(), to: url)
        let old = try Data(contentsOf: url)
        if geteuid() != 0 {
            chmod(directory.path, 0o555)
            guard case .io = cartError({ try CartFile.write(Fixture.cartridge(seed: 8), to: self.url) }) else { return XCTFail() }
            chmod(directory.path, 0o755)
        }
        XCTAssertEqual(try Data(contentsOf: url), old)
        XCTAssertEqual(try contents(), ["good.cart", "sub.cart"])
    }
}
