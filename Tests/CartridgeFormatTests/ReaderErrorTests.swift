@testable import CartridgeFormat
import Foundation
import XCTest

final class ReaderErrorTests: XCTestCase {
    private let path = "<memory>"

    func testWrongModelIsRejectedNamingBothModels() throws {
        let bytes = try CartFile.encode(Fixture.cartridge())
        for read in [{ try CartFile.decode(bytes, expectedModel: Fixture.otherModel) as Any },
                     { try CartFile.decodeSummary(bytes, expectedModel: Fixture.otherModel) as Any }] {
            let error = cartError(read)
            XCTAssertEqual(error, .wrongModel(cartridge: Fixture.model, expected: Fixture.otherModel))
            let message = error?.description ?? ""
            for part in ["SmolLM2-135M-Instruct", "Other-Model-7B", "0123456789ab", "fedcba987654"] {
                XCTAssertTrue(message.contains(part), "\(part) missing from: \(message)")
            }
        }
        // the same fingerprint in capitals is the same model
        let upper = ModelIdentity(name: "renamed", fingerprint: Fixture.model.fingerprint.uppercased())
        XCTAssertNoThrow(try CartFile.decode(bytes, expectedModel: upper))
    }

    func testWrongModelIsRejectedFromDisk() throws {
        let dir = try Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("a.cart")
        try CartFile.write(Fixture.cartridge(), to: url)
        XCTAssertEqual(cartError { try CartFile.read(from: url, expectedModel: Fixture.otherModel) },
                       .wrongModel(cartridge: Fixture.model, expected: Fixture.otherModel))
    }

    func testNewerMajorVersionIsRejectedWithAClearMessage() throws {
        var bytes = try CartFile.encode(Fixture.cartridge())
        bytes.writeLE(2, at: 8, width: 2)
        resealHeader(&bytes)
        let error = cartError { try CartFile.decode(bytes) }
        XCTAssertEqual(error, .unsupportedVersion(found: 2, supported: 1))
        XCTAssertTrue(error?.description.contains("format version 2") ?? false)
        XCTAssertTrue(error?.description.contains("update the cartridge tools") ?? false)
        // a newer version may change everything after byte 48, even the header length
        var future = Array(bytes[0..<48]) + [UInt8](repeating: 0x5A, count: 400)
        future.writeLE(300, at: 12, width: 4)
        resealHeader(&future)
        XCTAssertEqual(cartError { try CartFile.decode(future) }, .unsupportedVersion(found: 2, supported: 1))
        // without a valid header checksum, a changed version is corruption
        var flipped = try CartFile.encode(Fixture.cartridge())
        flipped[8] = 2
        XCTAssertEqual(cartError { try CartFile.decode(flipped) }, .headerChecksumMismatch(path: path))
    }

    func testForeignAndEmptyFilesAreNotCartridges() throws {
        XCTAssertEqual(cartError { try CartFile.decode(Array("GGUF\u{3}\0\0\0 some other file format".utf8)) }, .notACartridge(path: path))
        XCTAssertEqual(cartError { try CartFile.decode(Array("{\"json\": true}".utf8)) }, .notACartridge(path: path))
        XCTAssertEqual(cartError { try CartFile.decode([]) }, .truncated(path: path, expectedBytes: 48, actualBytes: 0))
        XCTAssertEqual(cartError { try CartFile.decode(Array(CartHeader.magic[0..<5])) }, .truncated(path: path, expectedBytes: 48, actualBytes: 5))
        let dir = try Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        guard case .io = cartError({ try CartFile.read(from: dir.appendingPathComponent("missing.cart")) }) else { return XCTFail() }
        guard case .io = cartError({ try CartFile.read(from: dir) }) else { return XCTFail("a directory is not a file") }
    }

    func testEachSectionReportsItsOwnChecksum() throws {
        let bytes = try CartFile.encode(Fixture.cartridge())
        let s = Sections(bytes)
        let offsets: [(Int, CartError)] = [
            (20, .headerChecksumMismatch(path: path)),
            (100, .headerChecksumMismatch(path: path)),
            (192 + 5, .checksumMismatch(path: path, section: .metadata)),
            (192 + s.metadata.count + 3, .checksumMismatch(path: path, section: .retrieval)),
            (bytes.count - 1, .checksumMismatch(path: path, section: .payload)),
        ]
        for (offset, expected) in offsets {
            var b = bytes
            b[offset] ^= 0x01
            XCTAssertEqual(cartError { try CartFile.decode(b) }, expected, "flip at \(offset)")
        }
    }

    func testTruncatedAndExtendedFilesAreReported() throws {
        let bytes = try CartFile.encode(Fixture.cartridge())
        XCTAssertEqual(cartError { try CartFile.decode(Array(bytes.dropLast())) },
                       .truncated(path: path, expectedBytes: bytes.count, actualBytes: bytes.count - 1))
        XCTAssertEqual(cartError { try CartFile.decode(Array(bytes[0..<100])) },
                       .truncated(path: path, expectedBytes: 192, actualBytes: 100))
        XCTAssertEqual(cartError { try CartFile.decode(bytes + [0]) },
                       .trailingBytes(path: path, expectedBytes: bytes.count, actualBytes: bytes.count + 1))
    }

    func testUnknownCodecAndDTypeAreRejected() throws {
        var b = try CartFile.encode(Fixture.cartridge())
        b[48] = 2
        resealHeader(&b)
        XCTAssertEqual(cartError { try CartFile.decode(b) }, .unsupportedCodec(path: path, code: 2))
        b[48] = 1
        b[49] = 9
        resealHeader(&b)
        XCTAssertEqual(cartError { try CartFile.decode(b) }, .unsupportedDType(path: path, code: 9))
        b[49] = TensorDType.bf16.headerCode  // the metadata says f16
        resealHeader(&b)
        guard case .corruptMetadata = cartError({ try CartFile.decode(b) }) else { return XCTFail() }
    }

    func testHugeDeclaredLengthsFailWithoutAllocating() throws {
        let bytes = try CartFile.encode(Fixture.cartridge())
        for (offset, width) in [(56, 8), (64, 8), (72, 8), (80, 8), (88, 8), (12, 4)] {
            for value: UInt64 in [UInt64.max, UInt64(Int.max), 1 << 40, 1 << 62] {
                var b = bytes
                b.writeLE(value, at: offset, width: width)
                resealHeader(&b)
                guard let e = cartError({ try CartFile.decode(b) }) else { continue }
                switch e {
                case .truncated, .corruptHeader, .trailingBytes: break
                default: XCTFail("field at \(offset) = \(value): unexpected \(e)")
                }
            }
        }
    }

    func testInconsistentSectionsWithValidChecksumsAreRejected() throws {
        let c = Fixture.cartridge()
        let base = Sections(try CartFile.encode(c))
        func error(_ edit: (inout Sections) -> Void) -> CartError? {
            var s = base
            edit(&s)
            return cartError { try CartFile.decode(s.assembled()) }
        }
        func metadataJSON(_ edit: @escaping (inout [String: Any]) -> Void) -> (inout Sections) -> Void {
            { s in
                var json = try! JSONSerialization.jsonObject(with: Data(s.metadata)) as! [String: Any]
                edit(&json)
                s.metadata = Array(try! JSONSerialization.data(withJSONObject: json))
            }
        }
        // metadata that is not JSON, misses a field, or contradicts itself
        guard case .corruptMetadata = error({ $0.metadata = Array("not json".utf8) }) else { return XCTFail() }
        let missing = error(metadataJSON { $0["layers"] = nil })
        XCTAssertTrue(missing?.description.contains("missing field layers") ?? false, "\(String(describing: missing))")
        guard case .corruptMetadata = error(metadataJSON { $0["frozenSlots"] = 99 }) else { return XCTFail() }
        guard case .corruptMetadata = error(metadataJSON { $0["dtype"] = "f64" }) else { return XCTFail() }
        guard case .corruptMetadata = error(metadataJSON { $0["layers"] = 4_000_000_000_000_000_000 }) else { return XCTFail() }
        guard case .shapeMismatch = error(metadataJSON { $0["layers"] = 3 }) else { return XCTFail() }
        guard case .corruptRetrieval = error(metadataJSON { $0["embeddingDimension"] = 6 }) else { return XCTFail() }
        // a retrieval block claiming a billion vectors
        guard case .corruptRetrieval = error({ $0.retrieval.writeLE(1_000_000_000, at: 0, width: 4) }) else { return XCTFail() }
        guard case .corruptRetrieval = error({ $0.retrieval.removeLast(4) }) else { return XCTFail() }
        guard case .corruptRetrieval = error({ $0.retrieval = [] }) else { return XCTFail() }
        // payloads that are not one zstd frame of the declared size
        guard case .corruptPayload = error({ $0.payload = [UInt8](repeating: 7, count: 64) }) else { return XCTFail() }
        guard case .corruptPayload = error({ $0.payload += $0.payload }) else { return XCTFail() }
        guard case .corruptPayload = error({ $0.payload.removeLast() }) else { return XCTFail() }
        guard case .corruptPayload = error({ s in
            if case let .success(p) = Zstd.compress([UInt8](repeating: 1, count: 100), level: 3) { s.payload = p }
        }) else { return XCTFail() }
        // a well-formed payload holding infinities (0x7C00 in f16)
        let raw = [UInt8](repeating: 0, count: 2 * 64 * 2).enumerated().map { $0.offset % 2 == 1 ? UInt8(0x7C) : 0 }
        guard case .corruptPayload = error({ s in
            if case let .success(p) = Zstd.compress(raw, level: 3) { s.payload = p }
        }) else { return XCTFail() }
        // the same payload with finite values reads back
        let zeros = [UInt8](repeating: 0, count: 2 * 64 * 2)
        var s = base
        if case let .success(p) = Zstd.compress(zeros, level: 3) { s.payload = p }
        XCTAssertEqual(try CartFile.decode(s.assembled()).keys, [Float](repeating: 0, count: 64))
    }
}
