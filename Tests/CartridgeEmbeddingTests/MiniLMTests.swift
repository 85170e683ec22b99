@testable import CartridgeEmbedding
import CartridgeKernels
import CartridgeTestSupport
import Foundation
import XCTest

/// The installed embedder and the reference data, loaded once per test process.
enum TestEmbedder {
    private static let loaded: Result<MiniLMEmbedder, Error> = Result { try MiniLMEmbedder(directory: MiniLMEmbedder.defaultDirectory) }

    static var referenceDirectory: URL { TestResources.referenceDirectory }

    /// The embedder in `MiniLMEmbedder.defaultDirectory`.
    static func embedder() throws -> MiniLMEmbedder { try TestResources.require(loaded, "embedder") }

    struct Text: Decodable {
        let text: String
        let ids: [Int]
        let n: Int
        let embedding: [Float]
    }

    struct Reference: Decodable {
        let texts: [Text]
        let cosine: [[Double]]
    }

    static func reference() throws -> Reference {
        let url = referenceDirectory.appendingPathComponent("minilm.json")
        return try JSONDecoder().decode(Reference.self, from: Data(contentsOf: url))
    }
}

final class MiniLMReferenceTests: XCTestCase {
    func testTokenIDsMatchTheReferenceExactlyForAllTexts() throws {
        let embedder = try TestEmbedder.embedder()
        let reference = try TestEmbedder.reference()
        XCTAssertEqual(reference.texts.count, 6)
        for entry in reference.texts {
            let ids = embedder.tokenize(entry.text)
            XCTAssertEqual(ids, entry.ids, "text '\(entry.text.prefix(40))'")
            XCTAssertEqual(ids.count, entry.n)
        }
        XCTAssertEqual(reference.texts.last?.ids.count, 256, "the last text exercises truncation")
    }

    func testEmbeddingsAgreeWithTheReferenceToCosine0_9999And1e5() throws {
        let embedder = try TestEmbedder.embedder()
        let reference = try TestEmbedder.reference()
        var worstCosine = 1.0, worstDiff: Float = 0
        for entry in reference.texts {
            let e = embedder.embed(entry.text)
            XCTAssertEqual(e.count, 384)
            XCTAssertEqual(entry.embedding.count, 384)
            let cos = cosine(e, entry.embedding)
            let diff = zip(e, entry.embedding).map { abs($0 - $1) }.max() ?? .infinity
            worstCosine = min(worstCosine, cos)
            worstDiff = max(worstDiff, diff)
            XCTAssertGreaterThanOrEqual(cos, 0.9999, "text '\(entry.text.prefix(40))'")
            XCTAssertLessThanOrEqual(diff, 1e-5, "text '\(entry.text.prefix(40))'")
        }
        print("MiniLM vs reference: worst cosine \(worstCosine), worst max abs diff \(worstDiff)")
    }

    func testCosineMatrixMatchesTheReferenceWithin1e5() throws {
        let embedder = try TestEmbedder.embedder()
        let reference = try TestEmbedder.reference()
        let embeddings = embedder.embed(reference.texts.map(\.text))
        var worst = 0.0
        for i in embeddings.indices {
            for j in embeddings.indices {
                let d = abs(cosine(embeddings[i], embeddings[j]) - reference.cosine[i][j])
                worst = max(worst, d)
                XCTAssertLessThanOrEqual(d, 1e-5, "cosine[\(i)][\(j)]")
            }
        }
        print("MiniLM cosine matrix: worst abs diff \(worst)")
    }

    func testBatchEmbeddingEqualsOneByOneAndIsUnitLength() throws {
        let embedder = try TestEmbedder.embedder()
        let texts = ["first text", "", "a second, longer text about cartridges"]
        let batch = embedder.embed(texts)
        XCTAssertEqual(batch.count, 3)
        for (text, e) in zip(texts, batch) {
            XCTAssertEqual(e, embedder.embed(text))
            XCTAssertEqual(e.count, embedder.dimension)
            XCTAssertEqual(e.reduce(0.0) { $0 + Double($1) * Double($1) }, 1, accuracy: 1e-6)
        }
        XCTAssertEqual(embedder.embed([String]()).count, 0)
    }

    func testEmbeddingOf256TokensIsFast() throws {
        let embedder = try TestEmbedder.embedder()
        let text = String(repeating: "retrieval augmented generation with cartridges ", count: 80)
        XCTAssertEqual(embedder.tokenize(text).count, 256)
        _ = embedder.embed(text)  // warm up BLAS threads
        var best = Duration.seconds(1000)
        for _ in 0..<5 {
            let start = ContinuousClock.now
            _ = embedder.embed(text)
            best = min(best, ContinuousClock.now - start)
        }
        print("MiniLM: embedding 256 tokens takes \(best) (best of 5)")
        XCTAssertLessThan(best, .seconds(2), "far slower than expected (about 20-50 ms)")
    }

    private func cosine(_ a: [Float], _ b: [Float]) -> Double {
        var dot = 0.0, na = 0.0, nb = 0.0
        for (x, y) in zip(a, b) {
            dot += Double(x) * Double(y)
            na += Double(x) * Double(x)
            nb += Double(y) * Double(y)
        }
        return dot / (na.squareRoot() * nb.squareRoot())
    }
}

final class WordPieceTokenizerTests: XCTestCase {
    /// Content ids (no [CLS]/[SEP]) with the real vocabulary; expectations come from the
    /// `tokenizers` library (0.23) loading the model's tokenizer.json.
    private func ids(_ text: String) throws -> [Int] {
        try TestEmbedder.embedder().tokenizer.tokenize(text)
    }

    func testAccentsAreStrippedAndTextIsLowerCased() throws {
        XCTAssertEqual(try ids("Café NAÏVE Ångström"), [7668, 15743, 17076, 15687])
        XCTAssertEqual(try ids("ÉCOLE résumé"), [12431, 13746])
        XCTAssertEqual(try ids("İstanbul"), [9960])
    }

    func testCJKCharactersArePiecesOfTheirOwn() throws {
        XCTAssertEqual(try ids("日本語"), [1864, 1876, 1950])
        XCTAssertEqual(try ids("東京タワー"), [1879, 1755, 1709, 30262, 30265])  // katakana is not split
        XCTAssertEqual(try ids("a\u{2B920}b"), [1037, 100, 1038])  // CJK Extension E, as `tokenizers` ranges it
        XCTAssertEqual(try ids("a\u{2B900}b"), [100])
        XCTAssertEqual(try ids("한국어"), [1469, 30006, 30021, 29991, 30014, 30020, 29999, 30008])  // NFD jamo
    }

    func testPunctuationIsSplitOff() throws {
        XCTAssertEqual(try ids("Hello, world!!"), [7592, 1010, 2088, 999, 999])
        XCTAssertEqual(try ids("don't (stop) - 3.14"), [2123, 1005, 1056, 1006, 2644, 1007, 1011, 1017, 1012, 2403])
    }

    func testEmojiAndUnknownWordsBecomeOneUnknownToken() throws {
        XCTAssertEqual(try ids("🚀"), [100])
        XCTAssertEqual(try ids("a🚀b"), [100])
        XCTAssertEqual(try ids("rocket 🚀 launch"), [7596, 100, 4888])
        XCTAssertEqual(try ids(String(repeating: "x", count: 100)), [22038] + Array(repeating: 20348, count: 49))
        XCTAssertEqual(try ids(String(repeating: "x", count: 101)), [100])
    }

    func testControlAndFormatCharactersAreDroppedAndWhitespaceSplits() throws {
        XCTAssertEqual(try ids(""), [])
        XCTAssertEqual(try ids("   \t\n "), [])
        XCTAssertEqual(try ids("x\u{200B}y"), [1060, 2100])
        XCTAssertEqual(try ids("\u{0}a\u{FFFD}b"), [11113])
    }

    func testCharacterClassesFollowUnicode8LikeTheReferenceLibrary() throws {
        XCTAssertEqual(try ids("a\u{08E3}b"), [11113])  // Mn from Unicode 8.0: stripped
        XCTAssertEqual(try ids("a\u{1AC1}b"), [100])    // Mn from Unicode 14: kept
        XCTAssertEqual(try ids("x\u{2E43}y"), [100])    // Po from Unicode 9: not split
    }

    func testSpecialTokensInTheTextAreMatchedCaseSensitively() throws {
        XCTAssertEqual(try ids("a[MASK]b [CLS]"), [1037, 103, 1038, 101])
        XCTAssertEqual(try ids("[mask]"), [1031, 7308, 1033])
    }

    func testEncodeAddsClsAndSepAndTruncatesTo256() throws {
        let embedder = try TestEmbedder.embedder()
        XCTAssertEqual(embedder.tokenize(""), [101, 102])
        XCTAssertEqual(embedder.tokenize("unaffable"), [101, 14477, 20961, 3468, 102])
        let long = embedder.tokenize(String(repeating: "word ", count: 1000))
        XCTAssertEqual(long.count, 256)
        XCTAssertEqual(long.first, 101)
        XCTAssertEqual(long.last, 102)
    }

    func testGreedyLongestMatchFirstWithContinuationPieces() throws {
        let vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "una", "##ff", "##ffa", "##ble", "##a", "b", ",", "##b"]
        let tok = try WordPieceTokenizer(tokens: vocab, maxLength: 6)
        XCTAssertEqual(tok.tokens(tok.tokenize("unaffable")), ["una", "##ffa", "##ble"])
        XCTAssertEqual(tok.tokens(tok.tokenize("UNAFFABLE, b")), ["una", "##ffa", "##ble", ",", "b"])
        XCTAssertEqual(tok.tokenize("unx"), [tok.unknownID], "an unmatched rest makes the whole word [UNK]")
        XCTAssertEqual(tok.encode("b b b b b b b"), [2, 10, 10, 10, 10, 3], "cut to maxLength with [CLS]/[SEP]")
        XCTAssertEqual(tok.encode("b[SEP]b"), [2, 10, 3, 10, 3])
        XCTAssertThrowsError(try WordPieceTokenizer(tokens: ["a", "[CLS]", "[SEP]"], maxLength: 8)) { error in
            XCTAssertEqual(error as? WordPieceError, .missingSpecialToken(path: "<memory>", token: "[UNK]"))
        }
        XCTAssertThrowsError(try WordPieceTokenizer(tokens: vocab, maxLength: 1))
    }
}

final class SafeTensorsTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("safetensors-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    /// Writes 8-byte length + header (+ padding spaces) + data and returns the path.
    private func write(header: String, data: [UInt8], lengthOverride: UInt64? = nil, name: String = "t.safetensors") throws -> String {
        let h = Array(header.utf8)
        var bytes: [UInt8] = []
        let length = lengthOverride ?? UInt64(h.count)
        for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: length >> (8 * UInt64(i)))) }
        bytes += h + data
        let url = directory.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    private func floatBytes(_ values: [Float]) -> [UInt8] {
        values.flatMap { v in (0..<4).map { UInt8(truncatingIfNeeded: v.bitPattern >> (8 * UInt32($0))) } }
    }

    private func expectError(_ path: String, _ check: (SafeTensorsError) -> Bool, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try SafeTensorsFile(path: path), file: file, line: line) { error in
            guard let e = error as? SafeTensorsError else { return XCTFail("untyped error \(error)", file: file, line: line) }
            XCTAssertTrue(check(e), "unexpected error: \(e)", file: file, line: line)
            XCTAssertFalse(e.description.isEmpty)
        }
    }

    func testReadsF32F16AndBF16TensorsAndMetadata() throws {
        // a: F32 [2] = 1.5, -2; b: F16 [2] = 1, -0.5 (0x3C00, 0xB800) + subnormal 2^-24; c: BF16 [1] = 3 (0x4040)
        let header = #"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F16","shape":[3],"data_offsets":[8,14]},"c":{"dtype":"BF16","shape":[1],"data_offsets":[14,16]}}  "#
        let data = floatBytes([1.5, -2]) + [0x00, 0x3C, 0x00, 0xB8, 0x01, 0x00] + [0x40, 0x40]
        let file = try SafeTensorsFile(path: try write(header: header, data: data))
        XCTAssertEqual(file.metadata, ["format": "pt"])
        XCTAssertEqual(file.tensors.count, 3)
        XCTAssertEqual(try file.floats("a", shape: [2]), [1.5, -2])
        XCTAssertEqual(try file.floats("b"), [1, -0.5, Float(sign: .plus, exponent: -24, significand: 1)])
        XCTAssertEqual(try file.floats("c"), [3])
        XCTAssertThrowsError(try file.floats("a", shape: [1, 2])) { error in
            XCTAssertEqual(error as? SafeTensorsError, .unexpectedShape(path: file.path, tensor: "a", expected: [1, 2], found: [2]))
        }
        XCTAssertThrowsError(try file.floats("missing")) { error in
            XCTAssertEqual(error as? SafeTensorsError, .missingTensor(path: file.path, tensor: "missing"))
        }
    }

    func testRejectsFilesShorterThanTheLengthField() throws {
        let url = directory.appendingPathComponent("short.safetensors")
        try Data([1, 2, 3]).write(to: url)
        expectError(url.path) { if case .fileTooSmall = $0 { return true }; return false }
        try Data().write(to: url)
        expectError(url.path) { if case .fileTooSmall = $0 { return true }; return false }
    }

    func testRejectsAHeaderLengthBeyondTheFile() throws {
        let path = try write(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0], lengthOverride: 1_000)
        expectError(path) { if case .headerOutOfBounds(_, 1_000, _) = $0 { return true }; return false }
        let huge = try write(header: "{}", data: [], lengthOverride: UInt64.max, name: "huge.safetensors")
        expectError(huge) { if case .headerOutOfBounds = $0 { return true }; return false }
    }

    func testRejectsHeadersThatAreNotAJSONObject() throws {
        expectError(try write(header: #"{"a": [1, 2"#, data: [])) { if case .invalidHeader = $0 { return true }; return false }
        expectError(try write(header: "[1, 2, 3]", data: [])) { if case .invalidHeader = $0 { return true }; return false }
        expectError(try write(header: "\u{FF}\u{FE}", data: [])) { if case .invalidHeader = $0 { return true }; return false }
    }

    func testRejectsAnUnknownDTypeNamingTheTensor() throws {
        let path = try write(header: #"{"w":{"dtype":"Q4","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0])
        expectError(path) { $0 == .unknownDType(path: path, tensor: "w", dtype: "Q4") }
    }

    func testRejectsMalformedEntries() throws {
        let noShape = try write(header: #"{"w":{"dtype":"F32","data_offsets":[0,4]}}"#, data: [0, 0, 0, 0])
        expectError(noShape) { if case .invalidEntry(_, "w", _) = $0 { return true }; return false }
        let negative = try write(header: #"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0], name: "n.safetensors")
        expectError(negative) { if case .invalidEntry(_, "w", _) = $0 { return true }; return false }
        let reversed = try write(header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#, data: [0, 0, 0, 0], name: "r.safetensors")
        expectError(reversed) { if case .invalidEntry(_, "w", _) = $0 { return true }; return false }
        let metadata = try write(header: #"{"__metadata__":{"n":1}}"#, data: [], name: "m.safetensors")
        expectError(metadata) { if case .invalidMetadata = $0 { return true }; return false }
    }

    func testRejectsAShapeThatDisagreesWithTheByteLength() throws {
        let path = try write(header: #"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}"#, data: Array(repeating: 0, count: 20))
        expectError(path) { $0 == .byteLengthMismatch(path: path, tensor: "w", shape: [2, 3], dtype: "F32", expected: 24, found: 20) }
    }

    func testRejectsTruncatedData() throws {
        let path = try write(header: #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: Array(repeating: 0, count: 10))
        expectError(path) { $0 == .offsetsOutOfBounds(path: path, tensor: "w", begin: 0, end: 16, dataSize: 10) }
    }

    func testRejectsOverlappingTensorsAndGaps() throws {
        let overlap = try write(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                                data: Array(repeating: 0, count: 12))
        expectError(overlap) { $0 == .offsetsNotContiguous(path: overlap, tensor: "b", begin: 4, expected: 8) }
        let gap = try write(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#,
                            data: Array(repeating: 0, count: 12), name: "gap.safetensors")
        expectError(gap) { $0 == .offsetsNotContiguous(path: gap, tensor: "b", begin: 8, expected: 4) }
        let trailing = try write(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
                                 data: Array(repeating: 0, count: 6), name: "trailing.safetensors")
        expectError(trailing) { $0 == .uncoveredData(path: trailing, covered: 4, dataSize: 6) }
    }

    func testRejectsAMissingFile() {
        expectError(directory.appendingPathComponent("absent.safetensors").path) { if case .cannotOpen = $0 { return true }; return false }
    }

    func testAcceptsTheRealModelFile() throws {
        let path = try TestResources.requireFile(MiniLMEmbedder.defaultDirectory.appendingPathComponent("model.safetensors").path, "embedder")
        let file = try SafeTensorsFile(path: path)
        XCTAssertEqual(file.tensors["embeddings.word_embeddings.weight"]?.shape, [30522, 384])
        XCTAssertEqual(file.tensors["embeddings.position_ids"]?.dtype, .i64)
        XCTAssertEqual(file.metadata["format"], "pt")
    }
}

final class EmbedderLoadingTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("embedder-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    func testAMissingDirectoryIsATypedError() {
        let path = directory.appendingPathComponent("nowhere")
        XCTAssertThrowsError(try MiniLMEmbedder(directory: path)) { error in
            XCTAssertEqual(error as? EmbedderError, .directoryNotFound(path: path.path))
        }
    }

    func testMissingOrCorruptFilesAreTypedErrors() throws {
        XCTAssertThrowsError(try MiniLMEmbedder(directory: directory)) { error in
            XCTAssertEqual(error as? EmbedderError, .missingFile(path: self.directory.appendingPathComponent("config.json").path))
        }
        let config = directory.appendingPathComponent("config.json")
        try Data("{ not json".utf8).write(to: config)
        XCTAssertThrowsError(try MiniLMEmbedder(directory: directory)) { error in
            guard case .invalidJSON? = error as? EmbedderError else { return XCTFail("\(error)") }
        }
        try Data(#"{"hidden_size": 384, "num_attention_heads": 12}"#.utf8).write(to: config)
        XCTAssertThrowsError(try MiniLMEmbedder(directory: directory)) { error in
            guard case .invalidConfig(_, "max_position_embeddings", _)? = error as? EmbedderError else { return XCTFail("\(error)") }
        }
    }

    func testATruncatedWeightsFileIsATypedError() throws {
        let installed = MiniLMEmbedder.defaultDirectory
        _ = try TestResources.requireFile(installed.appendingPathComponent("model.safetensors").path, "embedder")
        for name in ["config.json", "vocab.txt"] {
            try FileManager.default.copyItem(at: installed.appendingPathComponent(name), to: directory.appendingPathComponent(name))
        }
        let weights = try FileHandle(forReadingFrom: installed.appendingPathComponent("model.safetensors"))
        let head = try weights.read(upToCount: 100_000) ?? Data()
        try weights.close()
        try head.write(to: directory.appendingPathComponent("model.safetensors"))
        XCTAssertThrowsError(try MiniLMEmbedder(directory: directory)) { error in
            guard case .safeTensors(.offsetsOutOfBounds)? = error as? EmbedderError else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("truncated"))
        }
    }
}

final class EncoderOpsTests: XCTestCase {
    func testGELUMatchesTheErfDefinition() {
        let xs = stride(from: -12.0, through: 12.0, by: 0.001).map { Float($0) } + [0, -0.0, 1e-6, -1e-6, 40, -40]
        var values = xs
        values.withUnsafeMutableBufferPointer { EncoderOps.gelu($0.baseAddress!, count: $0.count) }
        var worst = 0.0
        for (x, g) in zip(xs, values) {
            let exact = 0.5 * Double(x) * (1 + Foundation.erf(Double(x) / 2.0.squareRoot()))
            worst = max(worst, abs(Double(g) - exact))
        }
        XCTAssertLessThan(worst, 1e-6)
    }

    func testLayerNormGivesZeroMeanUnitVarianceBeforeTheAffineMap() {
        var x: [Float] = (0..<2 * 40).map { Float($0 % 7) * 0.3 - 1 }
        let gamma = [Float](repeating: 2, count: 40), beta = [Float](repeating: 0.5, count: 40)
        x.withUnsafeMutableBufferPointer { EncoderOps.layerNorm($0.baseAddress!, gamma: gamma, beta: beta, rows: 2, dim: 40, eps: 1e-12) }
        for r in 0..<2 {
            let row = x[(r * 40)..<(r * 40 + 40)].map { Double(($0 - 0.5) / 2) }
            let mean = row.reduce(0, +) / 40
            let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / 40
            XCTAssertEqual(mean, 0, accuracy: 1e-6)
            XCTAssertEqual(variance, 1, accuracy: 1e-5)
        }
    }
}
