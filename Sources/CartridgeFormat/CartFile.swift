// Reading and writing .cart files (docs/cart-format.md).
//
// File = header | metadata JSON | retrieval block | zstd payload, each section with its own
// SHA-256 in the header and the header with its own, so every byte is checked, and the first
// three sections can be read and checked without touching the payload.

import CartridgeKernels
import Foundation

/// Reads and writes `.cart` files.
public enum CartFile {
    /// The major format version this build writes and reads.
    public static let formatVersion = CartHeader.currentMajorVersion
    /// Length of the retrieval block's own header (rows, dimension, element type, reserved).
    static let retrievalHeaderLength = 16
    /// Element type code of f32 retrieval vectors.
    static let retrievalF32 = 1

    // MARK: Writing

    /// Writes `cartridge` to `url` atomically: readers see the old file or the complete new one,
    /// never a partial file, and no temporary file is left behind.
    ///
    /// - Parameters:
    ///   - dtype: how to store the tensors; default `cartridge.metadata.dtype`. The metadata
    ///     written says the dtype actually used. f16 and bf16 round to nearest, ties to even;
    ///     q8_0 and q4_0 quantize blocks of 32 values along `headDim`, which must be a multiple
    ///     of 32 (`TensorDType.roundTripped` gives the values a read will return).
    ///   - compressionLevel: the zstd level (default 3).
    /// - Throws: `CartError.invalidCartridge` or `.shapeMismatch` when the cartridge is not
    ///   sound (nothing is written), `CartError.io` when the file system refuses.
    public static func write(_ cartridge: Cartridge, to url: URL, dtype: TensorDType? = nil, compressionLevel: Int = 3) throws {
        try write(cartridge, to: url, dtype: dtype, compressionLevel: compressionLevel, beforeRename: { _ in })
    }

    /// `write` with a hook that runs once the temporary file is complete (for tests).
    static func write(_ cartridge: Cartridge, to url: URL, dtype: TensorDType?, compressionLevel: Int,
                      beforeRename: (String) throws -> Void) throws {
        let bytes = try encode(cartridge, dtype: dtype, compressionLevel: compressionLevel)
        try atomicWrite(bytes, to: url.path, beforeRename: beforeRename)
    }

    /// The bytes of a `.cart` file holding `cartridge` (what `write` puts on disk).
    public static func encode(_ cartridge: Cartridge, dtype: TensorDType? = nil, compressionLevel: Int = 3) throws -> [UInt8] {
        var cartridge = cartridge
        let dtype = dtype ?? cartridge.metadata.dtype
        cartridge.metadata.dtype = dtype
        try cartridge.validate()
        guard Zstd.levels.contains(compressionLevel) else {
            throw CartError.invalidCartridge(reason: "compression level \(compressionLevel) is outside zstd's \(Zstd.levels)")
        }
        let meta = cartridge.metadata
        for (field, object) in [("recipe", meta.recipe), ("results", meta.results)] {
            if let bad = object.first(where: { !$0.value.isFinite }) {
                throw CartError.invalidCartridge(reason: "\(field)[\"\(bad.key)\"] contains a non-finite number, which JSON cannot hold")
            }
        }

        // metadata
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let metadataBytes: [UInt8]
        do {
            metadataBytes = Array(try encoder.encode(meta))
        } catch {
            throw CartError.invalidCartridge(reason: "the metadata cannot be encoded as JSON: \(error)")
        }

        // retrieval block
        guard meta.chunks.count <= UInt32.max, meta.embeddingDimension <= UInt32.max else {
            throw CartError.invalidCartridge(reason: "more than 2^32 - 1 retrieval chunks or dimensions")
        }
        var retrieval: [UInt8] = []
        retrieval.reserveCapacity(retrievalHeaderLength + 4 * cartridge.retrievalVectors.count)
        retrieval.appendLE(UInt32(meta.chunks.count))
        retrieval.appendLE(UInt32(meta.embeddingDimension))
        retrieval.appendLE(UInt32(retrievalF32))
        retrieval.appendLE(UInt32(0))
        for v in cartridge.retrievalVectors { retrieval.appendLE(v.bitPattern) }

        // payload: for each layer, its keys then its values (validate() checked that a layer's
        // elements are a whole number of the dtype's blocks)
        let perLayer = meta.layerElementCount ?? 0
        let layerBytes = dtype.byteCount(elements: perLayer) ?? 0
        var raw = [UInt8](repeating: 0, count: 2 * meta.layers * layerBytes)
        try raw.withUnsafeMutableBytes { out in
            for l in 0..<meta.layers {
                for (t, tensor) in [("keys", cartridge.keys), ("values", cartridge.values)].enumerated() {
                    let offset = (2 * l + t) * layerBytes
                    try tensor.1.withUnsafeBufferPointer { src in
                        let part = UnsafeBufferPointer(rebasing: src[(l * perLayer)..<((l + 1) * perLayer)])
                        if let bad = dtype.encode(part, into: out, at: offset) {
                            throw CartError.invalidCartridge(reason: dtype.tooLargeReason("\(tensor.0)[\(l * perLayer + bad)] = \(part[bad])"))
                        }
                    }
                }
            }
        }
        let payload: [UInt8]
        switch Zstd.compress(raw, level: compressionLevel) {
        case let .success(p): payload = p
        case let .failure(message): throw CartError.invalidCartridge(reason: "zstd compression failed: \(message)")
        }

        let header = CartHeader.encode(
            dtype: dtype, metadataLength: metadataBytes.count, retrievalLength: retrieval.count,
            payloadLength: payload.count, payloadRawLength: raw.count,
            metadataSHA256: sha256(metadataBytes), retrievalSHA256: sha256(retrieval), payloadSHA256: sha256(payload))
        return header + metadataBytes + retrieval + payload
    }

    // MARK: Reading

    /// Reads, checks and decodes a whole `.cart` file.
    ///
    /// Every byte is verified (header, metadata, retrieval and payload checksums, all lengths,
    /// the zstd frame, shapes against the metadata, finiteness) before anything is returned.
    /// - Parameter expectedModel: when given, a cartridge whose model fingerprint differs
    ///   throws `CartError.wrongModel`, before the payload is decompressed.
    /// - Throws: `CartError` naming what is wrong.
    public static func read(from url: URL, expectedModel: ModelIdentity? = nil) throws -> Cartridge {
        let source = try FileSource(path: url.path)
        return try read(source, path: url.path, expectedModel: expectedModel)
    }

    /// Reads and checks the header, metadata and retrieval vectors of a `.cart` file, without
    /// reading or decompressing the tensor payload (whose checksum is therefore not verified).
    public static func readSummary(from url: URL, expectedModel: ModelIdentity? = nil) throws -> CartridgeSummary {
        let source = try FileSource(path: url.path)
        return try readSummary(source, path: url.path, expectedModel: expectedModel)
    }

    /// `read` for the bytes of a file already in memory; `path` is only used in messages.
    public static func decode(_ bytes: [UInt8], path: String = "<memory>", expectedModel: ModelIdentity? = nil) throws -> Cartridge {
        try read(MemorySource(bytes: bytes, path: path), path: path, expectedModel: expectedModel)
    }

    /// `readSummary` for the bytes of a file already in memory; `path` is only used in messages.
    public static func decodeSummary(_ bytes: [UInt8], path: String = "<memory>", expectedModel: ModelIdentity? = nil) throws -> CartridgeSummary {
        try readSummary(MemorySource(bytes: bytes, path: path), path: path, expectedModel: expectedModel)
    }

    static func readSummary(_ source: ByteSource, path: String, expectedModel: ModelIdentity?) throws -> CartridgeSummary {
        let header = try CartHeader.read(from: source, path: path)
        let sections = try source.read(offset: header.metadataOffset, count: header.metadataLength + header.retrievalLength)
        let metadataBytes = sections[0..<header.metadataLength]
        let retrievalBytes = sections[header.metadataLength...]
        guard Hex.string(sha256(metadataBytes)) == header.metadataSHA256 else { throw CartError.checksumMismatch(path: path, section: .metadata) }
        guard Hex.string(sha256(retrievalBytes)) == header.retrievalSHA256 else { throw CartError.checksumMismatch(path: path, section: .retrieval) }

        let metadata: CartridgeMetadata
        do {
            metadata = try JSONDecoder().decode(CartridgeMetadata.self, from: Data(metadataBytes))
        } catch {
            throw CartError.corruptMetadata(path: path, reason: "not valid cartridge metadata JSON (\(describe(error)))")
        }
        if let problem = metadata.problem() { throw CartError.corruptMetadata(path: path, reason: problem) }
        guard metadata.dtype == header.dtype else {
            throw CartError.corruptMetadata(path: path, reason: "the metadata says dtype \(metadata.dtype.rawValue) but the header says \(header.dtype.rawValue)")
        }
        // payload size implied by the metadata (problem() checked that the element count exists
        // and that a block dtype's blocks fit whole in headDim)
        let elements = metadata.tensorElementCount ?? 0
        let rawBytes = checkedProduct([2, elements]).flatMap { header.dtype.byteCount(elements: $0) }
        guard let rawBytes, rawBytes == header.payloadRawLength else {
            let perBlock = header.dtype.isBlockQuantized ? " ÷ \(header.dtype.blockLength) values per block" : ""
            throw CartError.shapeMismatch(
                what: "\(path): payload bytes (2 tensors × \(metadata.layers) layers × \(metadata.kvHeads) heads × \(metadata.length) slots × \(metadata.headDim) dims\(perBlock) × \(header.dtype.blockBytes) bytes)",
                expected: rawBytes ?? -1, found: header.payloadRawLength)
        }
        let vectors = try decodeRetrieval(Array(retrievalBytes), metadata: metadata, path: path)
        if let expected = expectedModel, !metadata.model.isSameModel(as: expected) {
            throw CartError.wrongModel(cartridge: metadata.model, expected: expected)
        }
        return CartridgeSummary(
            metadata: metadata, retrievalVectors: vectors, fileBytes: header.fileLength,
            payloadCompressedBytes: header.payloadLength, payloadRawBytes: header.payloadRawLength,
            formatVersion: header.majorVersion, header: header)
    }

    static func read(_ source: ByteSource, path: String, expectedModel: ModelIdentity?) throws -> Cartridge {
        let summary = try readSummary(source, path: path, expectedModel: expectedModel)
        let header = summary.header
        let metadata = summary.metadata
        let frame = try source.read(offset: header.payloadOffset, count: header.payloadLength)
        guard Hex.string(sha256(frame)) == header.payloadSHA256 else { throw CartError.checksumMismatch(path: path, section: .payload) }

        switch Zstd.frameLength(frame) {
        case let .failure(f): throw CartError.corruptPayload(path: path, reason: f.description)
        case let .success(n):
            guard n == frame.count else {
                throw CartError.corruptPayload(path: path, reason: "the zstd frame is \(n) bytes but the payload is \(frame.count); a payload is exactly one frame")
            }
        }
        switch Zstd.declaredContentSize(frame) {
        case let .failure(f): throw CartError.corruptPayload(path: path, reason: f.description)
        case let .success(n):
            guard n == UInt64(header.payloadRawLength) else {
                throw CartError.corruptPayload(path: path, reason: "the zstd frame declares \(n) bytes, the header \(header.payloadRawLength)")
            }
        }
        let raw: [UInt8]
        switch Zstd.decompress(frame, rawCount: header.payloadRawLength) {
        case let .failure(f): throw CartError.corruptPayload(path: path, reason: f.description)
        case let .success(r): raw = r
        }

        let perLayer = metadata.layerElementCount ?? 0
        let count = metadata.tensorElementCount ?? 0
        var keys = [Float](repeating: 0, count: count)
        var values = [Float](repeating: 0, count: count)
        let layerBytes = header.dtype.byteCount(elements: perLayer) ?? 0
        try raw.withUnsafeBytes { input in
            for l in 0..<metadata.layers {
                for t in 0..<2 {
                    let offset = (2 * l + t) * layerBytes
                    let decode = { (out: inout UnsafeMutableBufferPointer<Float>) -> String? in
                        let part = UnsafeMutableBufferPointer(rebasing: out[(l * perLayer)..<((l + 1) * perLayer)])
                        return header.dtype.decode(input, at: offset, into: part)
                    }
                    let problem = t == 0 ? keys.withUnsafeMutableBufferPointer(decode) : values.withUnsafeMutableBufferPointer(decode)
                    if let problem {
                        throw CartError.corruptPayload(path: path, reason: "\(t == 0 ? "keys" : "values") of layer \(l) hold \(problem)")
                    }
                }
            }
        }
        return Cartridge(metadata: metadata, keys: keys, values: values, retrievalVectors: summary.retrievalVectors)
    }

    /// The retrieval vectors of a retrieval block, checked against the metadata.
    private static func decodeRetrieval(_ block: [UInt8], metadata: CartridgeMetadata, path: String) throws -> [Float] {
        guard block.count >= retrievalHeaderLength else {
            throw CartError.corruptRetrieval(path: path, reason: "the block has \(block.count) bytes, less than its \(retrievalHeaderLength)-byte header")
        }
        let rows = Int(block.readLE(0, 4))
        let dimension = Int(block.readLE(4, 4))
        let elementType = Int(block.readLE(8, 4))
        guard rows == metadata.chunks.count else {
            throw CartError.corruptRetrieval(path: path, reason: "the block has \(rows) vectors but the metadata lists \(metadata.chunks.count) chunks")
        }
        guard dimension == metadata.embeddingDimension else {
            throw CartError.corruptRetrieval(path: path, reason: "the vectors have dimension \(dimension) but the metadata says \(metadata.embeddingDimension)")
        }
        guard elementType == retrievalF32 else {
            throw CartError.corruptRetrieval(path: path, reason: "element type \(elementType) is unknown (1 = f32)")
        }
        guard block.readLE(12, 4) == 0 else { throw CartError.corruptRetrieval(path: path, reason: "reserved bytes 12..<16 are not zero") }
        let count = metadata.retrievalElementCount ?? 0  // problem() checked it
        guard let expected = checkedProduct([count, 4]).flatMap({ checkedSum([$0, retrievalHeaderLength]) }), expected == block.count else {
            throw CartError.corruptRetrieval(path: path, reason: "the block has \(block.count) bytes; \(rows) × \(dimension) f32 vectors need \(retrievalHeaderLength + 4 * count)")
        }
        var vectors = [Float](repeating: 0, count: count)
        for i in 0..<count {
            let v = Float(bitPattern: UInt32(truncatingIfNeeded: block.readLE(retrievalHeaderLength + 4 * i, 4)))
            guard v.isFinite else { throw CartError.corruptRetrieval(path: path, reason: "element \(i) is not finite") }
            vectors[i] = v
        }
        return vectors
    }

    /// A short description of a decoding error.
    private static func describe(_ error: Error) -> String {
        switch error {
        case let DecodingError.keyNotFound(key, context):
            return "missing field \(path(context.codingPath + [key]))"
        case let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context):
            return "wrong type at \(path(context.codingPath)): \(context.debugDescription)"
        case let DecodingError.dataCorrupted(context):
            return context.codingPath.isEmpty ? context.debugDescription : "\(path(context.codingPath)): \(context.debugDescription)"
        default:
            return "\(error)"
        }
    }

    private static func path(_ keys: [CodingKey]) -> String {
        keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().trimmingCharacters(in: CharacterSet(charactersIn: "."))
    }
}
