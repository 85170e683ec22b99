import CartridgeModel
import Foundation
import XCTest

/// Checks `Dequantize` against gguf-py (`scripts/make-gguf-fixtures.py` writes Fixtures/dequant.json).
final class DequantizeTests: XCTestCase {
    private struct Entry: Decodable {
        let type: String
        let typeId: UInt32
        let count: Int
        let rawBase64: String
        /// Decoded as Double and narrowed to Float; the generator checks that this path is exact.
        let expected: [Double]
    }

    private func loadEntries() throws -> [Entry] {
        let url = try XCTUnwrap(
            Bundle.module.url(forResource: "dequant", withExtension: "json", subdirectory: "Fixtures"),
            "Fixtures/dequant.json missing from the test bundle")
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode([Entry].self, from: Data(contentsOf: url))
    }

    func testMatchesGGUFPyBitForBit() throws {
        let entries = try loadEntries()
        let supported = Set(GGMLType.allCases.filter(\.isSupported).map(\.name))
        XCTAssertEqual(Set(entries.map(\.type)), supported, "fixtures should cover every supported type")

        for entry in entries {
            let type = try XCTUnwrap(GGMLType(rawValue: entry.typeId), "unknown type id \(entry.typeId)")
            XCTAssertEqual(type.name, entry.type)
            let raw = try XCTUnwrap(Data(base64Encoded: entry.rawBase64), "\(entry.type): bad base64")
            XCTAssertEqual(raw.count, entry.count / type.blockSize * type.blockBytes, "\(entry.type): raw size")
            XCTAssertEqual(entry.expected.count, entry.count, "\(entry.type): expected count")

            // Dequantize from an odd address so that unaligned field reads are exercised.
            var shifted = Data([0])
            shifted.append(raw)
            var output = [Float](repeating: .nan, count: entry.count)
            try shifted.withUnsafeBytes { bytes in
                try output.withUnsafeMutableBufferPointer { out in
                    try Dequantize.run(type, from: bytes.baseAddress! + 1, count: entry.count, into: out.baseAddress!)
                }
            }

            var mismatches = 0
            var worst: (index: Int, got: Float, want: Float, diff: Float)?
            for (i, want) in entry.expected.map({ Float($0) }).enumerated() where output[i].bitPattern != want.bitPattern {
                mismatches += 1
                let diff = abs(output[i] - want)
                if worst == nil || !(diff <= worst!.diff) { worst = (i, output[i], want, diff) }
            }
            if let worst {
                XCTFail("\(entry.type): \(mismatches)/\(entry.count) values differ; largest difference \(worst.diff) "
                    + "at index \(worst.index): got \(worst.got), expected \(worst.want)")
            }
        }
    }

    func testBufferVariantChecksSizes() throws {
        let entries = try loadEntries()
        let entry = try XCTUnwrap(entries.first { $0.type == "Q4_K" })
        let raw = try XCTUnwrap(Data(base64Encoded: entry.rawBase64))
        var output = [Float](repeating: 0, count: entry.count)
        try raw.withUnsafeBytes { bytes in
            try output.withUnsafeMutableBufferPointer { out in
                try Dequantize.run(.q4_K, from: bytes, count: entry.count, into: out)
                XCTAssertThrowsError(try Dequantize.run(.q4_K, from: UnsafeRawBufferPointer(rebasing: bytes.dropLast()),
                                                        count: entry.count, into: out))
                XCTAssertThrowsError(try Dequantize.run(.q4_K, from: bytes, count: entry.count,
                                                        into: UnsafeMutableBufferPointer(rebasing: out.dropLast())))
            }
        }
        XCTAssertEqual(output.map(\.bitPattern), entry.expected.map { Float($0).bitPattern })
        let empty = UnsafeMutableBufferPointer<Float>(start: nil, count: 0)
        XCTAssertThrowsError(try Dequantize.run(.iq2_xs, from: UnsafeRawBufferPointer(start: nil, count: 0),
                                                count: 0, into: empty))
        XCTAssertNoThrow(try Dequantize.run(.q8_0, from: UnsafeRawBufferPointer(start: nil, count: 0),
                                            count: 0, into: empty))
        XCTAssertEqual(try Dequantize.byteCount(.q6_K, count: 512), 420)
        XCTAssertEqual(try Dequantize.byteCount(.f16, count: 3), 6)
    }

    /// Runs `Dequantize.run` on zeroed input and returns the error it throws, if any.
    private func dequantizeError(_ type: GGMLType, count: Int) -> DequantizeError? {
        let source = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 16)
        source.initializeMemory(as: UInt8.self, repeating: 0, count: 4096)
        let destination = UnsafeMutablePointer<Float>.allocate(capacity: 1024)
        defer {
            source.deallocate()
            destination.deallocate()
        }
        do {
            try Dequantize.run(type, from: source, count: count, into: destination)
            return nil
        } catch {
            return error
        }
    }

    func testCountNotMultipleOfBlockSizeThrows() {
        let cases: [(GGMLType, Int)] = [(.q8_0, 33), (.q4_0, 16), (.q4_1, 31), (.q4_K, 255), (.q5_K, 300),
                                        (.q6_K, 1), (.q4_0, -32), (.f32, -1)]
        for (type, count) in cases {
            let error = dequantizeError(type, count: count)
            XCTAssertEqual(error, .invalidCount(type: type, count: count), "\(type.name) x \(count)")
            XCTAssertTrue(error.map { "\($0)".contains(type.name) } ?? false, "\(String(describing: error))")
        }
        XCTAssertNil(dequantizeError(.q4_K, count: 0))
        XCTAssertNil(dequantizeError(.q8_0, count: 64))
    }

    func testUnsupportedTypeThrowsNamingTheType() {
        for type in GGMLType.allCases where !type.isSupported {
            let error = dequantizeError(type, count: 256)
            XCTAssertEqual(error, .unsupportedType(type))
            XCTAssertTrue(error.map { "\($0)".contains(type.name) } ?? false, "\(type): \(String(describing: error))")
        }
        XCTAssertTrue("\(DequantizeError.unsupportedType(.q2_K))".contains("Q2_K"))
        XCTAssertTrue("\(DequantizeError.unsupportedType(.iq4_xs))".contains("IQ4_XS"))
    }
}
