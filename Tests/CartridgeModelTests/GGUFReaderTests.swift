@testable import CartridgeModel
import CartridgeKernels
import CartridgeTestSupport
import Foundation
import XCTest

/// The GGUF reader against a fixture written by gguf-py (scripts/make-gguf-fixtures.py), and
/// against corrupted copies of it: every defect must be a typed error, never a crash.
final class GGUFReaderTests: XCTestCase {
    private var fixture: URL { Bundle.module.url(forResource: "types", withExtension: "gguf", subdirectory: "Fixtures")! }

    func testReadsEveryMetadataValueType() throws {
        let f = try GGUFFile(path: fixture.path)
        XCTAssertEqual(f.version, 3)
        XCTAssertEqual(f.alignment, 64)
        XCTAssertEqual(f.metadata["test.u8"], .uint8(200))
        XCTAssertEqual(f.metadata["test.i8"], .int8(-100))
        XCTAssertEqual(f.metadata["test.u16"], .uint16(60000))
        XCTAssertEqual(f.metadata["test.i16"], .int16(-30000))
        XCTAssertEqual(f.metadata["test.u32"], .uint32(4_000_000_000))
        XCTAssertEqual(f.metadata["test.i32"], .int32(-2_000_000_000))
        XCTAssertEqual(f.metadata["test.f32"], .float32(3.25))
        XCTAssertEqual(f.metadata["test.bool"], .bool(true))
        XCTAssertEqual(f.metadata["test.string"], .string("héllo wörld ✓"))
        XCTAssertEqual(f.metadata["test.u64"], .uint64(18_000_000_000_000_000_000))
        XCTAssertEqual(f.metadata["test.i64"], .int64(-9_000_000_000_000_000_000))
        XCTAssertEqual(f.metadata["test.f64"], .float64(2.718281828459045))
        XCTAssertEqual(try f.ints("test.array_i32"), [1, -2, 3, 2_147_483_647, -2_147_483_648])
        XCTAssertEqual(try f.strings("test.array_str"), ["a", "", "ünïcode", "three words"])
        XCTAssertEqual(f.metadata["test.array_empty"]?.array?.count, 0)
        XCTAssertEqual(f.keys.first, "general.architecture")
        XCTAssertEqual(f.keys.count, 17)
    }

    func testTypedGettersNameTheKeyOnMismatch() throws {
        let f = try GGUFFile(path: fixture.path)
        XCTAssertThrowsError(try f.int("test.string")) { e in
            XCTAssertTrue("\(e)".contains("test.string"), "\(e)")
        }
        XCTAssertThrowsError(try f.string("no.such.key")) { e in
            XCTAssertEqual(e as? GGUFError, .missingKey("no.such.key"))
        }
        XCTAssertNil(f.metadata["test.u64"]!.int, "u64 above Int.max must not wrap")
    }

    func testTensorTableAndDequantizedValuesMatchTheFixture() throws {
        let f = try GGUFFile(path: fixture.path)
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: Bundle.module.url(forResource: "dequant", withExtension: "json", subdirectory: "Fixtures")!)) as! [[String: Any]]
        XCTAssertEqual(f.tensorNames.count, 9)
        for entry in expected {
            let name = "t_" + (entry["type"] as! String).lowercased()
            let info = try XCTUnwrap(f.tensors[name], name)
            XCTAssertEqual(info.type.rawValue, UInt32(entry["type_id"] as! Int), name)
            XCTAssertEqual(info.elementCount, entry["count"] as! Int, name)
            XCTAssertEqual(try f.data(name).count, Data(base64Encoded: entry["raw_base64"] as! String)!.count, name)
            let values = try f.floats(name)
            let want = (entry["expected"] as! [Double]).map { Float($0) }
            XCTAssertEqual(values.map(\.bitPattern), want.map(\.bitPattern), name)
        }
    }

    func testEveryTruncationIsATypedError() throws {
        let bytes = try Data(contentsOf: fixture)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gguf-trunc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("t.gguf")
        // every cut inside the header and tensor table, and a few inside the tensor data, up to
        // the last byte of the last tensor (t_q6_k: 420 bytes at data offset 1664; data starts at 1024)
        var cuts = Array(0..<1024)
        cuts += [1500, 2000, 1024 + 1664 + 420 - 1]
        for n in cuts {
            try bytes.prefix(n).write(to: path)
            XCTAssertThrowsError(try GGUFFile(path: path.path), "a file cut to \(n) bytes was accepted") { e in
                XCTAssertTrue(e is GGUFError, "cut \(n): \(e)")
            }
        }
    }

    func testCorruptedHeadersAreTypedErrors() throws {
        let original = try Data(contentsOf: fixture)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gguf-bad-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("bad.gguf")
        func check(_ edit: (inout Data) -> Void, _ expect: (GGUFError) -> Bool, _ label: String) throws {
            var d = original
            edit(&d)
            try d.write(to: path)
            XCTAssertThrowsError(try GGUFFile(path: path.path), label) { e in
                guard let g = e as? GGUFError else { return XCTFail("\(label): untyped \(e)") }
                XCTAssertTrue(expect(g), "\(label): \(g)")
            }
        }
        func put64(_ d: inout Data, _ at: Int, _ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { d.replaceSubrange(at..<(at + 8), with: $0) } }
        try check({ $0[0] = 0x58 }, { if case .notGGUF = $0 { return true }; return false }, "bad magic")
        try check({ $0[4] = 9 }, { $0 == .unsupportedVersion(9) }, "version 9")
        try check({ $0[4] = 0; $0[7] = 3 }, { if case .bigEndian = $0 { return true }; return false }, "big-endian")
        try check({ put64(&$0, 8, 1 << 60) }, { if case .implausibleCount = $0 { return true }; return false }, "huge tensor count")
        try check({ put64(&$0, 16, 1 << 60) }, { if case .implausibleCount = $0 { return true }; return false }, "huge metadata count")
        try check({ put64(&$0, 24, 1 << 50) }, { if case .truncated = $0 { return true }; return false }, "huge key length")
        XCTAssertThrowsError(try GGUFFile(path: dir.appendingPathComponent("missing.gguf").path)) { e in
            XCTAssertTrue("\(e)".contains("missing.gguf"))
        }
    }

    func testRandomByteFlipsNeverCrash() throws {
        let original = try Data(contentsOf: fixture)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gguf-flip-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("f.gguf")
        var rng = SplitMix64(seed: 99)
        for _ in 0..<1000 {
            var d = original
            for _ in 0..<Int(rng.next() % 4 + 1) {
                let at = Int(rng.next() % 1024)
                d[at] ^= UInt8(truncatingIfNeeded: rng.next() | 1)
            }
            try d.write(to: path)
            do { _ = try GGUFFile(path: path.path) } catch is GGUFError {} catch { XCTFail("untyped error \(error)") }
        }
    }

    func testDefaultModelConfiguration() throws {
        let lm = try TestResources.model()
        let c = lm.config
        XCTAssertEqual([c.layers, c.dim, c.heads, c.kvHeads, c.headDim, c.ffnDim, c.vocabSize, c.contextLength],
                       [30, 576, 9, 3, 64, 1536, 49152, 8192])
        XCTAssertEqual(c.ropeBase, 100_000)
        XCTAssertEqual(c.rmsEps, 1e-5)
        XCTAssertTrue(c.tiedOutput)
        XCTAssertEqual(c.kvValuesPerToken, 11_520)
        XCTAssertEqual(lm.gguf.tensors["token_embd.weight"]?.type, .q8_0)
        XCTAssertEqual(lm.gguf.tensors["blk.0.attn_q.weight"]?.type, .q4_1)
    }
}
