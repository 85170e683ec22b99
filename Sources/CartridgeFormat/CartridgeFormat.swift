// The .cart file format (see docs/cart-format.md): the types a cartridge is made of.
//
// A cartridge is a trained KV-cache prefix for a frozen model: for every layer l, keys K_l and
// values V_l of shape (kvHeads, length, headDim), keys stored after RoPE. `CartFile` reads and
// writes them; this file holds the in-memory types and the checks shared by reader and writer.

import Foundation

/// The frozen model a cartridge belongs to: a name for people and a fingerprint for machines.
///
/// Two identities denote the same model when their fingerprints are equal (compared without
/// regard to letter case); the name is only used in messages.
public struct ModelIdentity: Codable, Sendable, Equatable {
    /// A readable name, for example `SmolLM2-135M-Instruct`.
    public var name: String
    /// Lower-case hexadecimal SHA-256 over the tensors and hyper-parameters that define the model.
    public var fingerprint: String

    public init(name: String, fingerprint: String) {
        self.name = name
        self.fingerprint = fingerprint
    }

    /// The first 12 hexadecimal digits of the fingerprint, enough to tell models apart in messages.
    public var shortFingerprint: String { String(fingerprint.prefix(12)) }

    /// Whether `other` is the same model (equal fingerprints, letter case ignored).
    public func isSameModel(as other: ModelIdentity) -> Bool {
        fingerprint.lowercased() == other.fingerprint.lowercased()
    }
}

/// How tensor elements are stored in the payload. Readers always return `Float`.
///
/// The float types store each value on its own; `q8_0` and `q4_0` store blocks of 32
/// consecutive values (along `headDim`, within one slot's row) that share one f16 scale, as GGUF
/// does. The encoding itself is in `TensorDType+Coding.swift`.
public enum TensorDType: String, Codable, Sendable, CaseIterable {
    /// IEEE 754 binary16 (1 sign, 5 exponent, 10 mantissa bits), rounded to nearest even.
    case f16
    /// bfloat16 (the upper 16 bits of a binary32), rounded to nearest even.
    case bf16
    /// IEEE 754 binary32, stored exactly.
    case f32
    /// GGUF's Q8_0: per block of 32 values an f16 scale d and 32 int8 q, x = q · d (34 bytes).
    case q8_0
    /// GGUF's Q4_0: per block of 32 values an f16 scale d and 32 4-bit q, x = (q - 8) · d (18 bytes).
    case q4_0

    /// The dtype names, for help texts and error messages: "f16, bf16, f32, q8_0 or q4_0".
    public static var choices: String {
        let names = allCases.map(\.rawValue)
        return names.dropLast().joined(separator: ", ") + " or " + names[names.count - 1]
    }

    /// Values per block: 32 for `q8_0` and `q4_0`, whose values share a scale; 1 for the float types.
    public var blockLength: Int {
        switch self {
        case .f32, .f16, .bf16: return 1
        case .q8_0, .q4_0: return 32
        }
    }

    /// Bytes per block: 4 (f32), 2 (f16, bf16), 34 (q8_0: 2 + 32), 18 (q4_0: 2 + 16).
    public var blockBytes: Int {
        switch self {
        case .f32: return 4
        case .f16, .bf16: return 2
        case .q8_0: return 34
        case .q4_0: return 18
        }
    }

    /// Whether values are stored in blocks that share a scale (`q8_0`, `q4_0`).
    public var isBlockQuantized: Bool { blockLength > 1 }

    /// Bytes that `elements` values take in this dtype, or nil when `elements` is negative, not a
    /// whole number of blocks, or the count overflows.
    public func byteCount(elements: Int) -> Int? {
        guard elements >= 0, elements % blockLength == 0 else { return nil }
        return checkedProduct([elements / blockLength, blockBytes])
    }

    /// The code of this dtype in the file header (1 = f32, 2 = f16, 3 = bf16, 4 = q8_0, 5 = q4_0).
    public var headerCode: UInt8 {
        switch self {
        case .f32: return 1
        case .f16: return 2
        case .bf16: return 3
        case .q8_0: return 4
        case .q4_0: return 5
        }
    }

    /// The dtype for a header code, or nil when the code is unknown.
    public init?(headerCode: UInt8) {
        switch headerCode {
        case 1: self = .f32
        case 2: self = .f16
        case 3: self = .bf16
        case 4: self = .q8_0
        case 5: self = .q4_0
        default: return nil
        }
    }
}

/// One document the cartridge was trained on.
public struct SourceDocument: Codable, Sendable, Equatable {
    /// Path of the document as given when the cartridge was made.
    public var path: String
    /// Lower-case hexadecimal SHA-256 of the document's bytes (64 digits).
    public var sha256: String
    /// Size of the document in bytes.
    public var bytes: Int

    public init(path: String, sha256: String, bytes: Int) {
        self.path = path
        self.sha256 = sha256
        self.bytes = bytes
    }
}

/// A piece of a source document that has one retrieval vector.
public struct RetrievalPassage: Codable, Sendable, Equatable {
    /// Index into `CartridgeMetadata.sources`.
    public var source: Int
    /// Start of the passage: a UTF-8 byte offset into the source document's text (inclusive).
    public var start: Int
    /// End of the passage: a UTF-8 byte offset into the source document's text (exclusive).
    /// Usually at most the document's `bytes`; beyond it when invalid UTF-8 in the document was
    /// replaced by U+FFFD (3 bytes) before it was split into passages.
    public var end: Int
    /// The beginning of the passage's text, for people.
    public var preview: String
    /// The passage's words, for lexical scoring; nil in files written before they were stored
    /// (such passages are found by their vector alone).
    public var terms: PassageTerms?

    public init(source: Int, start: Int, end: Int, preview: String, terms: PassageTerms? = nil) {
        self.source = source
        self.start = start
        self.end = end
        self.preview = preview
        self.terms = terms
    }
}

/// How the cartridge's keys were rotated (they are stored after RoPE).
public struct RoPEConvention: Codable, Sendable, Equatable {
    /// Which dimensions are rotated together: `adjacent-pairs` rotates (x[2i], x[2i+1]);
    /// `half-split` rotates (x[i], x[i + d/2]).
    public var layout: String
    /// The frequency base θ (rotation of pair i at position m is m · base^(-2i/d)).
    public var base: Double
    /// The positions of the slots, for example `0..<p`: slot j was rotated at position j.
    public var positions: String
    /// Whether the stored keys are already rotated (always true for files this tool writes).
    public var keysRotated: Bool

    public init(layout: String = "adjacent-pairs", base: Double, positions: String, keysRotated: Bool = true) {
        self.layout = layout
        self.base = base
        self.positions = positions
        self.keysRotated = keysRotated
    }
}

/// Everything a `.cart` file says about its cartridge, stored as JSON.
public struct CartridgeMetadata: Codable, Sendable, Equatable {
    /// A name for people.
    public var name: String
    /// The frozen model the cartridge was trained for.
    public var model: ModelIdentity
    /// Number of layers L.
    public var layers: Int
    /// Number of key/value heads per layer.
    public var kvHeads: Int
    /// Dimension of one head.
    public var headDim: Int
    /// Number of KV slots p (frozen ones included).
    public var length: Int
    /// Number of leading slots that were never trained (slot 0 is the attention sink).
    public var frozenSlots: Int
    /// How the tensors are stored in the file.
    public var dtype: TensorDType
    /// How the keys were rotated.
    public var rope: RoPEConvention
    /// A hash of the tokenizer (vocabulary and merges) the cartridge was trained with.
    public var tokenizerHash: String
    /// Name and version of the program that wrote the file.
    public var toolVersion: String
    /// Creation time, ISO 8601 in UTC, for example `2025-01-31T12:00:00Z`.
    public var createdAt: String
    /// How the cartridge was trained (free-form JSON object).
    public var recipe: [String: JSONValue]
    /// What training achieved: steps, final loss, evaluation figures (free-form JSON object).
    public var results: [String: JSONValue]
    /// Every document the cartridge was made from.
    public var sources: [SourceDocument]
    /// The model that made the retrieval vectors, nil when there are none.
    public var embeddingModel: String?
    /// Length of each retrieval vector (0 when there are none).
    public var embeddingDimension: Int
    /// One retrieval passage per retrieval vector, in the order of the vectors (the file's
    /// `chunks` field).
    public var chunks: [RetrievalPassage]

    public init(name: String, model: ModelIdentity, layers: Int, kvHeads: Int, headDim: Int, length: Int,
                frozenSlots: Int = 1, dtype: TensorDType = .f16, rope: RoPEConvention, tokenizerHash: String,
                toolVersion: String, createdAt: String = CartridgeMetadata.timestamp(),
                recipe: [String: JSONValue] = [:], results: [String: JSONValue] = [:],
                sources: [SourceDocument] = [], embeddingModel: String? = nil, embeddingDimension: Int = 0,
                chunks: [RetrievalPassage] = []) {
        self.name = name
        self.model = model
        self.layers = layers
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.length = length
        self.frozenSlots = frozenSlots
        self.dtype = dtype
        self.rope = rope
        self.tokenizerHash = tokenizerHash
        self.toolVersion = toolVersion
        self.createdAt = createdAt
        self.recipe = recipe
        self.results = results
        self.sources = sources
        self.embeddingModel = embeddingModel
        self.embeddingDimension = embeddingDimension
        self.chunks = chunks
    }

    /// The current time as ISO 8601 UTC with whole seconds, the form used for `createdAt`.
    public static func timestamp(_ date: Date = Date()) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: date)
    }

    /// Elements of one of the two tensors (keys or values) over all layers:
    /// layers · kvHeads · length · headDim, or nil when that overflows.
    public var tensorElementCount: Int? {
        checkedProduct([layers, kvHeads, length, headDim])
    }

    /// Elements of one layer's key (or value) tensor: kvHeads · length · headDim, or nil on overflow.
    public var layerElementCount: Int? {
        checkedProduct([kvHeads, length, headDim])
    }

    /// Elements of the retrieval vectors: chunks · embeddingDimension, or nil on overflow.
    public var retrievalElementCount: Int? {
        checkedProduct([chunks.count, embeddingDimension])
    }

    /// Why the metadata is inconsistent, or nil when it is sound. Checks ranges, references and
    /// that `headDim` holds whole blocks of `dtype`; the tensors are checked against it elsewhere.
    func problem() -> String? {
        if !isHex(model.fingerprint) { return "model.fingerprint \"\(model.fingerprint.prefix(80))\" is not a hexadecimal hash" }
        if layers < 1 { return "layers is \(layers), must be at least 1" }
        if kvHeads < 1 { return "kvHeads is \(kvHeads), must be at least 1" }
        if headDim < 1 { return "headDim is \(headDim), must be at least 1" }
        if headDim % dtype.blockLength != 0 {
            return "dtype \(dtype.rawValue) stores blocks of \(dtype.blockLength) values along headDim, but headDim is \(headDim), "
                + "not a multiple of \(dtype.blockLength); use f16, bf16 or f32 for this head size"
        }
        if length < 1 { return "length is \(length), must be at least 1" }
        if frozenSlots < 0 || frozenSlots > length { return "frozenSlots is \(frozenSlots), must be in 0...\(length) (length)" }
        if tensorElementCount == nil { return "layers × kvHeads × length × headDim overflows" }
        if rope.layout.isEmpty { return "rope.layout is empty" }
        if !rope.base.isFinite || rope.base <= 0 { return "rope.base is \(rope.base), must be a positive number" }
        if embeddingDimension < 0 { return "embeddingDimension is \(embeddingDimension), must not be negative" }
        if !chunks.isEmpty && embeddingDimension < 1 {
            return "there are \(chunks.count) retrieval chunks but embeddingDimension is \(embeddingDimension)"
        }
        if retrievalElementCount == nil { return "chunks × embeddingDimension overflows" }
        for (i, s) in sources.enumerated() {
            if s.bytes < 0 { return "sources[\(i)].bytes is \(s.bytes), must not be negative" }
            if s.sha256.utf8.count != 64 || !isHex(s.sha256) {
                return "sources[\(i)].sha256 \"\(s.sha256.prefix(80))\" is not 64 hexadecimal digits"
            }
        }
        for (i, c) in chunks.enumerated() {
            guard c.source >= 0 && c.source < sources.count else {
                return "chunks[\(i)].source is \(c.source), but there are \(sources.count) sources"
            }
            // no upper bound: a document with invalid UTF-8 is split into passages after U+FFFD replacement,
            // so its text can be longer than its `bytes`
            guard c.start >= 0 && c.start <= c.end else {
                return "chunks[\(i)] covers bytes \(c.start)..<\(c.end); need 0 <= start <= end"
            }
            if let p = c.terms?.problem() { return "chunks[\(i)].terms \(p)" }
        }
        return nil
    }
}

/// A cartridge in memory: metadata, f32 tensors and retrieval vectors.
public struct Cartridge: Sendable {
    public var metadata: CartridgeMetadata
    /// Post-RoPE keys, (layers, kvHeads, length, headDim), row-major.
    public var keys: [Float]
    /// Values, (layers, kvHeads, length, headDim), row-major.
    public var values: [Float]
    /// One vector per `metadata.chunks` entry, (chunks.count, embeddingDimension), row-major.
    public var retrievalVectors: [Float]

    public init(metadata: CartridgeMetadata, keys: [Float], values: [Float], retrievalVectors: [Float] = []) {
        self.metadata = metadata
        self.keys = keys
        self.values = values
        self.retrievalVectors = retrievalVectors
    }

    /// Checks that the metadata is sound, the arrays have the shapes it declares, and every
    /// value is finite. Throws `CartError.invalidCartridge` or `CartError.shapeMismatch`.
    public func validate() throws {
        if let p = metadata.problem() { throw CartError.invalidCartridge(reason: p) }
        // problem() guarantees the counts exist
        let n = metadata.tensorElementCount ?? 0
        let r = metadata.retrievalElementCount ?? 0
        guard keys.count == n else { throw CartError.shapeMismatch(what: "keys (layers × kvHeads × length × headDim)", expected: n, found: keys.count) }
        guard values.count == n else { throw CartError.shapeMismatch(what: "values (layers × kvHeads × length × headDim)", expected: n, found: values.count) }
        guard retrievalVectors.count == r else {
            throw CartError.shapeMismatch(what: "retrieval vectors (chunks × embeddingDimension)", expected: r, found: retrievalVectors.count)
        }
        for (name, array) in [("keys", keys), ("values", values), ("retrieval vectors", retrievalVectors)] {
            if let i = array.firstIndex(where: { !$0.isFinite }) {
                throw CartError.invalidCartridge(reason: "\(name)[\(i)] is \(array[i]); every value must be finite")
            }
        }
    }
}

/// What `CartFile.readSummary` returns: everything but the tensors.
public struct CartridgeSummary: Sendable {
    public var metadata: CartridgeMetadata
    /// (chunks.count, embeddingDimension), row-major.
    public var retrievalVectors: [Float]
    /// Size of the file in bytes.
    public var fileBytes: Int
    /// Size of the zstd-compressed tensor payload in bytes.
    public var payloadCompressedBytes: Int
    /// Size of the tensor payload after decompression, in bytes.
    public var payloadRawBytes: Int
    /// The file's major format version.
    public var formatVersion: Int
    /// The decoded fixed header.
    public var header: CartHeader
}

/// Whether `s` is a non-empty string of hexadecimal digits.
func isHex(_ s: String) -> Bool {
    !s.isEmpty && s.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) || ($0 >= 0x41 && $0 <= 0x46) }
}

/// The product of non-negative factors, or nil when it overflows `Int`.
func checkedProduct(_ factors: [Int]) -> Int? {
    var p = 1
    for f in factors {
        guard f >= 0 else { return nil }
        let (r, o) = p.multipliedReportingOverflow(by: f)
        if o { return nil }
        p = r
    }
    return p
}
