@testable import CartridgeFormat
import CartridgeKernels
import Foundation
import XCTest

enum Fixture {
    static let model = ModelIdentity(name: "SmolLM2-135M-Instruct", fingerprint: String(repeating: "0123456789abcdef", count: 4))
    static let otherModel = ModelIdentity(name: "Other-Model-7B", fingerprint: String(repeating: "fedcba9876543210", count: 4))

    /// A small cartridge: 2 layers, 1 KV head, 4 slots, head dimension 8, 3 retrieval chunks of
    /// dimension 5, values drawn from a seeded generator plus a few awkward values in layer 0.
    static func cartridge(dtype: TensorDType = .f16, layers: Int = 2, kvHeads: Int = 1, length: Int = 4, headDim: Int = 8,
                          seed: UInt64 = 1) -> Cartridge {
        var rng = SplitMix64(seed: seed)
        let sources = [
            SourceDocument(path: "docs/volcanoes.txt", sha256: String(repeating: "ab", count: 32), bytes: 1200),
            SourceDocument(path: "docs/bread é.txt", sha256: String(repeating: "cd", count: 32), bytes: 300),
        ]
        let chunks = [
            RetrievalPassage(source: 0, start: 0, end: 600, preview: "Volcanoes form where magma rises"),
            RetrievalPassage(source: 0, start: 500, end: 1200, preview: "Mount Etna \"erupts\"\n almost every year"),
            RetrievalPassage(source: 1, start: 0, end: 300, preview: "Sourdough — wild yeast"),
        ]
        let dimension = 5
        let meta = CartridgeMetadata(
            name: "test-cartridge", model: model, layers: layers, kvHeads: kvHeads, headDim: headDim, length: length,
            frozenSlots: 1, dtype: dtype,
            rope: RoPEConvention(layout: "adjacent-pairs", base: 100000, positions: "0..<\(length)", keysRotated: true),
            tokenizerHash: String(repeating: "9", count: 64), toolVersion: "cartridges 0.1.0-test",
            createdAt: "2025-01-31T12:00:00Z",
            recipe: ["objective": "distill", "steps": 200, "lr": 0.02, "topK": 20, "frozen": [0], "notes": nil],
            results: ["finalLoss": 1.25, "eval": ["accuracy": 0.5, "questions": 12], "converged": true],
            sources: sources, embeddingModel: "sentence-transformers/all-MiniLM-L6-v2", embeddingDimension: dimension,
            chunks: chunks)
        let n = layers * kvHeads * length * headDim
        var keys = (0..<n).map { _ in Float.random(in: -8...8, using: &rng) }
        let values = (0..<n).map { _ in Float.random(in: -1...1, using: &rng) }
        let awkward = awkwardValues
        for (i, v) in awkward.enumerated() where i < n { keys[i] = v }
        let vectors = (0..<(chunks.count * dimension)).map { _ in Float.random(in: -1...1, using: &rng) }
        return Cartridge(metadata: meta, keys: keys, values: values, retrievalVectors: vectors)
    }

    /// Values on or near rounding boundaries of f16 and bf16 (all finite and within f16 range).
    static let awkwardValues: [Float] = [
        0, -0.0, 1, -1, 0.1, 65504, -65504, 65519,
        1 + 0x1p-11, 1 + 3 * 0x1p-11, 1 + 0x1p-8, 1 + 3 * 0x1p-8,
        0x1p-24, 0x1p-25, 3 * 0x1p-25, 0x1p-14 - 0x1p-25,
        Float(bitPattern: 0x3F80_8000), Float(bitPattern: 0x3F81_8000), 1e-30, Float.pi,
    ]

    static func temporaryDirectory() throws -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("cartformat-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }
}

/// The four sections of an encoded file, for tests that rebuild files.
struct Sections {
    var header: [UInt8]
    var metadata: [UInt8]
    var retrieval: [UInt8]
    var payload: [UInt8]

    init(_ file: [UInt8]) {
        let h = Int(file.readLE(12, 4))
        let m = Int(file.readLE(64, 8)), r = Int(file.readLE(72, 8)), p = Int(file.readLE(80, 8))
        header = Array(file[0..<h])
        metadata = Array(file[h..<(h + m)])
        retrieval = Array(file[(h + m)..<(h + m + r)])
        payload = Array(file[(h + m + r)..<(h + m + r + p)])
    }

    /// The file with lengths, section checksums and the header checksum all made consistent.
    func assembled() -> [UInt8] {
        var h = header
        h.writeLE(UInt64(h.count), at: 12, width: 4)
        h.writeLE(UInt64(h.count + metadata.count + retrieval.count + payload.count), at: 56, width: 8)
        h.writeLE(UInt64(metadata.count), at: 64, width: 8)
        h.writeLE(UInt64(retrieval.count), at: 72, width: 8)
        h.writeLE(UInt64(payload.count), at: 80, width: 8)
        h.replaceSubrange(96..<128, with: sha256(metadata))
        h.replaceSubrange(128..<160, with: sha256(retrieval))
        h.replaceSubrange(160..<192, with: sha256(payload))
        resealHeader(&h)
        return h + metadata + retrieval + payload
    }
}

/// Recomputes the header checksum of `file` over its header length (at least 48 bytes, at
/// most the whole file), as a writer that meant the header to say this would.
func resealHeader(_ file: inout [UInt8]) {
    let h = min(max(Int(file.readLE(12, 4)), 48), file.count)
    let sum = CartHeader.checksum(of: Array(file[0..<h]))
    file.replaceSubrange(16..<48, with: sum)
}

/// The CartError `body` throws; fails the test when it throws nothing or something else.
func cartError(_ body: () throws -> Any, file: StaticString = #filePath, line: UInt = #line) -> CartError? {
    do {
        _ = try body()
        XCTFail("expected a CartError, got success", file: file, line: line)
    } catch let e as CartError {
        return e
    } catch {
        XCTFail("expected a CartError, got \(type(of: error)): \(error)", file: file, line: line)
    }
    return nil
}

func bitsEqual(_ a: [Float], _ b: [Float]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern }
}
