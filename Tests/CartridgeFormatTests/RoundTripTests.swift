@testable import CartridgeFormat
import CartridgeKernels
import Foundation
import XCTest

final class RoundTripTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws { directory = try Fixture.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    private func writeAndRead(_ c: Cartridge, dtype: TensorDType?) throws -> Cartridge {
        let url = directory.appendingPathComponent("c.cart")
        try CartFile.write(c, to: url, dtype: dtype)
        return try CartFile.read(from: url, expectedModel: Fixture.model)
    }

    func testF32RoundTripIsBitIdentical() throws {
        let c = Fixture.cartridge(dtype: .f32)
        let back = try writeAndRead(c, dtype: nil)
        XCTAssertTrue(bitsEqual(back.keys, c.keys))
        XCTAssertTrue(bitsEqual(back.values, c.values))
        XCTAssertTrue(bitsEqual(back.retrievalVectors, c.retrievalVectors))
        XCTAssertEqual(back.metadata, c.metadata)
    }

    func testF16RoundTripGivesTheCorrectlyRoundedValues() throws {
        let c = Fixture.cartridge(dtype: .f16)
        let back = try writeAndRead(c, dtype: nil)
        XCTAssertTrue(bitsEqual(back.keys, try TensorDType.f16.roundTripped(c.keys)))
        XCTAssertTrue(bitsEqual(back.values, try TensorDType.f16.roundTripped(c.values)))
        // the awkward values at the start of layer 0's keys, checked by hand
        let expected: [Float] = [
            0, -0.0, 1, -1, 0.0999755859375, 65504, -65504, 65504,
            1, 1 + 2 * 0x1p-10, 1 + 0x1p-8, 1 + 3 * 0x1p-8, // ties to even; then two values f16 holds exactly
            0x1p-24, 0, 2 * 0x1p-24, 0x1p-14,
        ]
        for (i, e) in expected.enumerated() {
            XCTAssertEqual(back.keys[i].bitPattern, e.bitPattern, "key \(i): \(back.keys[i]) != \(e)")
        }
        // retrieval vectors are always f32
        XCTAssertTrue(bitsEqual(back.retrievalVectors, c.retrievalVectors))
        XCTAssertEqual(back.metadata, c.metadata)
    }

    func testBF16RoundTripGivesTheCorrectlyRoundedValues() throws {
        let c = Fixture.cartridge(dtype: .f32)
        let back = try writeAndRead(c, dtype: .bf16)
        XCTAssertEqual(back.metadata.dtype, .bf16, "the metadata records the dtype actually written")
        XCTAssertTrue(bitsEqual(back.keys, try TensorDType.bf16.roundTripped(c.keys)))
        XCTAssertTrue(bitsEqual(back.values, try TensorDType.bf16.roundTripped(c.values)))
        XCTAssertEqual(back.keys[16], 1, "0x3F808000 is halfway between 0x3F80 and 0x3F81: even is 1.0")
        XCTAssertEqual(back.keys[17], Float(bitPattern: 0x3F82_0000), "0x3F818000 rounds up to the even 0x3F82")
        XCTAssertEqual(back.keys[19], 3.140625)
        var meta = c.metadata
        meta.dtype = .bf16
        XCTAssertEqual(back.metadata, meta)
    }

    func testMetadataAndRetrievalVectorsRoundTrip() throws {
        var c = Fixture.cartridge(dtype: .f16, layers: 3, kvHeads: 2, length: 5, headDim: 4, seed: 9)
        c.metadata.recipe["nested"] = ["a": [1, 2.5, "x", true, nil], "b": ["c": "d"]]
        c.metadata.embeddingModel = nil
        let back = try writeAndRead(c, dtype: nil)
        XCTAssertEqual(back.metadata, c.metadata)
        XCTAssertEqual(back.metadata.recipe["steps"], .number(200))
        XCTAssertEqual(back.metadata.results["converged"], .bool(true))
        XCTAssertEqual(back.metadata.sources[1].path, "docs/bread é.txt")
        XCTAssertEqual(back.metadata.chunks[1].preview, "Mount Etna \"erupts\"\n almost every year")
        XCTAssertTrue(bitsEqual(back.retrievalVectors, c.retrievalVectors))

        let summary = try CartFile.readSummary(from: directory.appendingPathComponent("c.cart"))
        XCTAssertEqual(summary.metadata, c.metadata)
        XCTAssertTrue(bitsEqual(summary.retrievalVectors, c.retrievalVectors))
        XCTAssertEqual(summary.formatVersion, 1)
        XCTAssertEqual(summary.payloadRawBytes, 2 * 3 * 2 * 5 * 4 * 2)
        XCTAssertEqual(summary.fileBytes, try Data(contentsOf: directory.appendingPathComponent("c.cart")).count)
        XCTAssertEqual(summary.header.headerLength, 192)
    }

    func testTensorLayoutIsLayerMajorWithKeysBeforeValues() throws {
        // element (l, h, s, d) of keys sits at ((l·H + h)·p + s)·d_head + d in memory, and in the
        // raw payload layer l's keys come before layer l's values
        var c = Fixture.cartridge(dtype: .f32, layers: 2, kvHeads: 2, length: 3, headDim: 2)
        let n = c.keys.count
        c.keys = (0..<n).map { Float($0) }
        c.values = (0..<n).map { Float(1000 + $0) }
        let bytes = try CartFile.encode(c)
        let sections = Sections(bytes)
        guard case let .success(raw) = Zstd.decompress(sections.payload, rawCount: 2 * n * 4) else { return XCTFail("payload") }
        let floats = stride(from: 0, to: raw.count, by: 4).map { Float(bitPattern: UInt32(raw.readLE($0, 4))) }
        let perLayer = n / 2
        XCTAssertEqual(Array(floats[0..<perLayer]), (0..<perLayer).map { Float($0) })
        XCTAssertEqual(Array(floats[perLayer..<(2 * perLayer)]), (0..<perLayer).map { Float(1000 + $0) })
        XCTAssertEqual(Array(floats[(2 * perLayer)..<(3 * perLayer)]), (perLayer..<n).map { Float($0) })
        let back = try CartFile.decode(bytes)
        XCTAssertEqual(back.keys, c.keys)
        XCTAssertEqual(back.values, c.values)
    }

    func testSummaryDoesNotReadThePayload() throws {
        var bytes = try CartFile.encode(Fixture.cartridge())
        bytes[bytes.count - 3] ^= 0x10  // inside the payload
        XCTAssertNoThrow(try CartFile.decodeSummary(bytes))
        XCTAssertEqual(cartError { try CartFile.decode(bytes) }, .checksumMismatch(path: "<memory>", section: .payload))
    }

    func testEncodingIsDeterministic() throws {
        let c = Fixture.cartridge()
        XCTAssertEqual(try CartFile.encode(c), try CartFile.encode(c))
    }

    func testNewerMinorVersionWithLongerHeaderAndUnknownFieldsIsRead() throws {
        let c = Fixture.cartridge()
        var s = Sections(try CartFile.encode(c))
        s.header.writeLE(7, at: 10, width: 2)              // minor version 7
        s.header += [UInt8](repeating: 0xEE, count: 24)    // fields a later 1.x might append
        var json = try JSONSerialization.jsonObject(with: Data(s.metadata)) as! [String: Any]
        json["futureField"] = ["anything": 1]
        s.metadata = Array(try JSONSerialization.data(withJSONObject: json))
        let back = try CartFile.decode(s.assembled())
        XCTAssertEqual(back.metadata, c.metadata)
        XCTAssertEqual(try CartFile.decodeSummary(s.assembled()).header.minorVersion, 7)
    }
}
