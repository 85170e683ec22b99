@testable import CartridgeFormat
import CartridgeKernels
import Foundation
import XCTest

/// q8_0 and q4_0 payloads: blocks of 32 values along headDim with an f16 scale, as in GGUF.
final class QuantizedPayloadTests: XCTestCase {
    private let path = "<memory>"

    /// 2 layers × 2 KV heads × 5 slots × head dim 64: each row is two blocks. Keys in -8...8 with
    /// the fixture's awkward values (65504 among them) at the start, values in -1...1.
    private func cartridge() -> Cartridge {
        Fixture.cartridge(dtype: .f32, layers: 2, kvHeads: 2, length: 5, headDim: 64, seed: 7)
    }

    /// The decompressed payload of an encoded file.
    private func rawPayload(_ file: [UInt8]) -> [UInt8] {
        guard case let .success(raw) = Zstd.decompress(Sections(file).payload, rawCount: Int(file.readLE(88, 8))) else {
            XCTFail("the payload does not decompress")
            return []
        }
        return raw
    }

    /// One block of a file: the values written, the values read back and the block's bytes.
    private struct Block {
        var written: [Float]
        var read: [Float]
        var bytes: [UInt8]
        /// The stored scale d.
        var scale: Float { HalfPrecision.float(f16: UInt16(bytes[0]) | UInt16(bytes[1]) << 8) }
    }

    /// Every block of `c` written as `dtype`, in payload order (layer by layer, keys then values).
    private func blocks(_ c: Cartridge, _ dtype: TensorDType) throws -> [Block] {
        let file = try CartFile.encode(c, dtype: dtype)
        let raw = rawPayload(file)
        let back = try CartFile.decode(file)
        let perLayer = c.metadata.layerElementCount!
        var out: [Block] = []
        var offset = 0
        for l in 0..<c.metadata.layers {
            for (written, read) in [(c.keys, back.keys), (c.values, back.values)] {
                for start in stride(from: l * perLayer, to: (l + 1) * perLayer, by: 32) {
                    out.append(Block(written: Array(written[start..<(start + 32)]), read: Array(read[start..<(start + 32)]),
                                     bytes: Array(raw[offset..<(offset + dtype.blockBytes)])))
                    offset += dtype.blockBytes
                }
            }
        }
        XCTAssertEqual(offset, raw.count, "the payload is exactly the blocks")
        return out
    }

    func testQ8_0RoundTripIsWithinHalfTheBlockScaleOfEveryValue() throws {
        let c = cartridge()
        let all = try blocks(c, .q8_0)
        XCTAssertEqual(all.count, 2 * 2 * 2 * 5 * 2)
        for (b, block) in all.enumerated() {
            let d = block.scale
            let largest = block.written.map(abs).max()!
            // d is max|x| / 127, rounded to an f16 no smaller
            XCTAssertGreaterThanOrEqual(d, largest / 127, "block \(b)")
            XCTAssertLessThanOrEqual(d, largest / 127 * (1 + 0x1p-10), "block \(b)")
            for j in 0..<32 {
                let q = Int8(bitPattern: block.bytes[2 + j])
                XCTAssertEqual(block.read[j], Float(q) * d, "block \(b) value \(j): x = q · d")
                XCTAssertLessThanOrEqual(abs(block.read[j] - block.written[j]), d * (0.5 + 1e-5), "block \(b) value \(j)")
            }
        }
        // what a file gives back is what roundTripped says
        let back = try CartFile.decode(CartFile.encode(c, dtype: .q8_0))
        XCTAssertTrue(bitsEqual(back.keys, try TensorDType.q8_0.roundTripped(c.keys)))
        XCTAssertTrue(bitsEqual(back.values, try TensorDType.q8_0.roundTripped(c.values)))
        XCTAssertEqual(back.metadata.dtype, .q8_0)
    }

    func testQ4_0RoundTripIsWithinHalfTheBlockScaleOfEveryUnclampedValue() throws {
        let c = cartridge()
        var clamped = 0
        for (b, block) in try blocks(c, .q4_0).enumerated() {
            let d = block.scale
            let m = block.written.max { abs($0) < abs($1) }!
            // d is m / -8 (m the value of largest magnitude), rounded to an f16 no smaller in magnitude
            XCTAssertTrue(d == 0 || (d < 0) == (m > 0), "block \(b): the scale has the sign opposite to \(m)")
            XCTAssertGreaterThanOrEqual(abs(d), abs(m) / 8, "block \(b)")
            XCTAssertLessThanOrEqual(abs(d), abs(m) / 8 * (1 + 0x1p-10), "block \(b)")
            for j in 0..<32 {
                // value j is the low nibble of byte j, value j + 16 the high nibble of byte j
                let byte = block.bytes[2 + j % 16]
                let q = j < 16 ? byte & 0x0F : byte >> 4
                XCTAssertEqual(block.read[j], Float(Int(q) - 8) * d, "block \(b) value \(j): x = (q - 8) · d")
                let error = abs(block.read[j] - block.written[j])
                if block.written[j] / d > 7.5 {
                    // the other sign's extreme: q = 16 does not fit in 4 bits and is clamped to 15
                    clamped += 1
                    XCTAssertEqual(q, 15)
                    XCTAssertLessThanOrEqual(error, abs(d) * (1 + 1e-5), "block \(b) value \(j)")
                } else {
                    XCTAssertLessThanOrEqual(error, abs(d) * (0.5 + 1e-5), "block \(b) value \(j)")
                }
            }
        }
        XCTAssertGreaterThan(clamped, 0, "the random values include some that clamp")
        let back = try CartFile.decode(CartFile.encode(c, dtype: .q4_0))
        XCTAssertTrue(bitsEqual(back.keys, try TensorDType.q4_0.roundTripped(c.keys)))
        XCTAssertTrue(bitsEqual(back.values, try TensorDType.q4_0.roundTripped(c.values)))
    }

    func testAllZeroBlockIsStoredAsZeroScaleAndReadAsZeros() throws {
        var c = cartridge()
        for j in 0..<64 { c.values[j] = 0 }  // the first row of layer 0's values: two blocks
        for dtype in [TensorDType.q8_0, .q4_0] {
            let all = try blocks(c, dtype)
            let firstValueBlock = c.metadata.layerElementCount! / 32
            for block in all[firstValueBlock..<(firstValueBlock + 2)] {
                XCTAssertEqual(Array(block.bytes[0..<2]), [0, 0], "\(dtype): scale 0")
                XCTAssertEqual(Array(block.bytes[2...]), [UInt8](repeating: dtype == .q8_0 ? 0 : 0x88, count: dtype.blockBytes - 2),
                               "\(dtype): q = 0 (q8_0), q = 8 (q4_0)")
                XCTAssertTrue(bitsEqual(block.read, [Float](repeating: 0, count: 32)), "\(dtype): +0 exactly")
            }
        }
        XCTAssertTrue(bitsEqual(try TensorDType.q4_0.roundTripped([Float](repeating: 0, count: 32)), [Float](repeating: 0, count: 32)))
    }

    func testOneLargeOutlierSetsItsBlockScaleAndLeavesTheNextBlockAlone() throws {
        var rng = SplitMix64(seed: 3)
        for outlier: Float in [1000, -1000] {
            var row = (0..<64).map { _ in Float.random(in: -0.01...0.01, using: &rng) }
            row[5] = outlier
            for dtype in [TensorDType.q8_0, .q4_0] {
                let back = try dtype.roundTripped(row)
                XCTAssertEqual(back[5], outlier, accuracy: abs(outlier) * 0x1p-10, "\(dtype): the outlier comes back, but for the f16 rounding of its scale")
                for j in 0..<32 where j != 5 {
                    XCTAssertEqual(back[j], 0, "\(dtype): the small values of the outlier's block are below half its scale")
                }
                let smallScale = row[32...].map(abs).max()! / (dtype == .q8_0 ? 127 : 8)
                for j in 32..<64 {
                    XCTAssertEqual(back[j], row[j], accuracy: smallScale * 1.01, "\(dtype): the second block has its own scale")
                }
            }
        }
    }

    func testQuantizedPayloadRawLengthIsBlocksTimesBlockBytes() throws {
        let c = cartridge()
        let blocks = 2 * 2 * 2 * 5 * (64 / 32)  // tensors × layers × heads × slots × blocks per row
        for (dtype, blockBytes) in [(TensorDType.q8_0, 34), (.q4_0, 18)] {
            let file = try CartFile.encode(c, dtype: dtype)
            XCTAssertEqual(file[49], dtype.headerCode)
            XCTAssertEqual(Int(file.readLE(88, 8)), blocks * blockBytes, "\(dtype): raw length in the header")
            XCTAssertEqual(rawPayload(file).count, blocks * blockBytes)
            let summary = try CartFile.decodeSummary(file)
            XCTAssertEqual(summary.payloadRawBytes, blocks * blockBytes)
            XCTAssertEqual(summary.metadata.dtype, dtype)
            XCTAssertEqual(dtype.byteCount(elements: 64), 2 * blockBytes)
            XCTAssertNil(dtype.byteCount(elements: 48), "not a whole number of blocks")
        }
        XCTAssertEqual(Int(try CartFile.encode(c, dtype: .f16).readLE(88, 8)), 2 * 2 * 2 * 5 * 64 * 2)
        XCTAssertEqual([TensorDType.q8_0, .q4_0].map(\.headerCode), [4, 5])
        XCTAssertEqual([UInt8(4), 5].map { TensorDType(headerCode: $0) }, [.q8_0, .q4_0])
        XCTAssertEqual(TensorDType.choices, "f16, bf16, f32, q8_0 or q4_0")
    }

    func testHeadDimNotAMultipleOf32IsRefusedAtWrite() throws {
        let dir = try Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("q.cart")
        for (dtype, headDim) in [(TensorDType.q8_0, 48), (.q4_0, 8)] {
            let c = Fixture.cartridge(dtype: .f16, headDim: headDim)
            let error = cartError { try CartFile.write(c, to: url, dtype: dtype) }
            guard case .invalidCartridge = error else { return XCTFail("\(String(describing: error))") }
            let message = error?.description ?? ""
            for part in [dtype.rawValue, "headDim is \(headDim)", "multiple of 32", "f16"] {
                XCTAssertTrue(message.contains(part), "\(part) missing from: \(message)")
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: url.path), "nothing is written")
        }
        guard case .invalidCartridge = cartError({ try TensorDType.q8_0.roundTripped([Float](repeating: 1, count: 33)) }) else { return XCTFail() }
    }

    func testFileClaimingBlocksThatDoNotFitHeadDimIsRejected() throws {
        // an f16 file with headDim 8, relabelled q8_0 in the header and the metadata
        var s = Sections(try CartFile.encode(Fixture.cartridge(dtype: .f16, headDim: 8)))
        var json = try JSONSerialization.jsonObject(with: Data(s.metadata)) as! [String: Any]
        json["dtype"] = "q8_0"
        s.metadata = Array(try JSONSerialization.data(withJSONObject: json))
        s.header[49] = TensorDType.q8_0.headerCode
        let error = cartError { try CartFile.decode(s.assembled()) }
        guard case .corruptMetadata = error else { return XCTFail("\(String(describing: error))") }
        XCTAssertTrue(error?.description.contains("not a multiple of 32") ?? false, "\(String(describing: error))")
    }

    func testTruncatedOrCorruptQuantizedPayloadGivesTypedErrors() throws {
        for dtype in [TensorDType.q8_0, .q4_0] {
            let file = try CartFile.encode(cartridge(), dtype: dtype)
            let raw = rawPayload(file)
            let base = Sections(file)
            /// The file with `raw` as its payload; `declare` also writes its length into the header.
            func with(_ raw: [UInt8], declare: Bool = true) -> [UInt8] {
                var s = base
                guard case let .success(p) = Zstd.compress(raw, level: 3) else { XCTFail("compress"); return [] }
                s.payload = p
                if declare { s.header.writeLE(UInt64(raw.count), at: 88, width: 8) }
                return s.assembled()
            }
            XCTAssertNoThrow(try CartFile.decode(with(raw)))

            // the file cut short, anywhere in the payload
            for cut in [1, Sections(file).payload.count / 2, Sections(file).payload.count - 1] {
                XCTAssertEqual(cartError { try CartFile.decode(Array(file.dropLast(cut))) },
                               .truncated(path: path, expectedBytes: file.count, actualBytes: file.count - cut), "\(dtype) cut \(cut)")
            }
            // a payload one block short, or with bytes that are not a whole block, declared as such
            for bad in [Array(raw.dropLast(dtype.blockBytes)), raw + [0], Array(raw.dropLast(1))] {
                guard case .shapeMismatch = cartError({ try CartFile.decode(with(bad)) }) else { return XCTFail("\(dtype) \(bad.count) bytes") }
            }
            // a payload one block short while the header still declares the full length
            guard case .corruptPayload = cartError({ try CartFile.decode(with(Array(raw.dropLast(dtype.blockBytes)), declare: false)) }) else {
                return XCTFail("\(dtype)")
            }
            // a NaN or infinite scale in the second block of layer 1's values
            let perLayerBlocks = 2 * 5 * 2
            let offset = (3 * perLayerBlocks + 1) * dtype.blockBytes
            for scale: UInt16 in [0x7E00, 0x7C00, 0xFC00] {
                var bad = raw
                bad[offset] = UInt8(scale & 0xFF)
                bad[offset + 1] = UInt8(scale >> 8)
                let error = cartError { try CartFile.decode(with(bad)) }
                guard case .corruptPayload = error else { return XCTFail("\(dtype) scale \(scale): \(String(describing: error))") }
                let message = error?.description ?? ""
                XCTAssertTrue(message.contains("values of layer 1 hold a non-finite scale"), message)
                XCTAssertTrue(message.contains("block 1 (elements 32..<64)"), message)
            }
        }
    }

    func testValueTooLargeForABlockScaleIsRefused() throws {
        for (dtype, limit) in [(TensorDType.q8_0, Float(65504 * 127)), (.q4_0, Float(65504 * 8))] {
            var c = Fixture.cartridge(dtype: .f32, headDim: 32)
            c.values[40] = limit
            XCTAssertNoThrow(try CartFile.encode(c, dtype: dtype), "\(dtype): the largest value whose scale fits f16")
            c.values[40] = -limit * 1.01
            let error = cartError { try CartFile.encode(c, dtype: dtype) }
            guard case .invalidCartridge = error else { return XCTFail("\(String(describing: error))") }
            XCTAssertTrue(error?.description.contains("values[40] = \(-limit * 1.01) is too large for \(dtype.rawValue)") ?? false,
                          "\(String(describing: error))")
        }
    }
}
