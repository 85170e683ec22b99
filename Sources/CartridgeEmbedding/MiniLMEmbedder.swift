import CartridgeKernels
import Foundation
import Logging

/// Why the embedder could not be loaded. Each case names the file at fault and what to do.
public enum EmbedderError: Error, CustomStringConvertible, Equatable {
    case directoryNotFound(path: String)
    case missingFile(path: String)
    case invalidJSON(path: String, reason: String)
    case invalidConfig(path: String, key: String, reason: String)
    case unsupportedConfig(path: String, reason: String)
    case vocabularyTooLarge(path: String, tokens: Int, embeddingRows: Int)
    case safeTensors(SafeTensorsError)
    case vocabulary(WordPieceError)

    public var description: String {
        switch self {
        case let .directoryNotFound(path):
            return "no embedder at \(path): install all-MiniLM-L6-v2 there, or use the directory of a sentence-transformers BERT model"
        case let .missingFile(path):
            return "the embedder file \(path) is missing: reinstall the embedder (delete its directory first if it is damaged)"
        case let .invalidJSON(path, reason): return "\(path) is not a valid JSON object: \(reason)"
        case let .invalidConfig(path, key, reason): return "\(path): '\(key)' \(reason)"
        case let .unsupportedConfig(path, reason): return "\(path): \(reason); only BERT encoders with exact GELU and mean pooling are supported"
        case let .vocabularyTooLarge(path, tokens, rows):
            return "\(path) has \(tokens) tokens but the model embeds only \(rows); the vocabulary does not belong to this model"
        case let .safeTensors(e): return e.description
        case let .vocabulary(e): return e.description
        }
    }
}

/// The shape of a BERT encoder, from `config.json` (and `sentence_bert_config.json`).
public struct MiniLMConfig: Sendable, Equatable {
    /// `hidden_size` (384), also the embedding dimension.
    public let hiddenSize: Int
    /// `num_hidden_layers` (6).
    public let layers: Int
    /// `num_attention_heads` (12).
    public let heads: Int
    /// `intermediate_size` (1536), the width of the feed-forward layer.
    public let intermediateSize: Int
    /// `layer_norm_eps` (1e-12).
    public let layerNormEps: Float
    /// `max_position_embeddings` (512), rows of the position table.
    public let maxPositions: Int
    /// `vocab_size` (30522), rows of the word-embedding table.
    public let vocabSize: Int
    /// `type_vocab_size` (2); only token type 0 is used.
    public let typeVocabSize: Int
    /// Most tokens per text, `[CLS]` and `[SEP]` included (sentence-transformers' `max_seq_length`).
    public let maxSequenceLength: Int

    /// Width of one attention head (32).
    public var headDim: Int { hiddenSize / heads }
}

/// all-MiniLM-L6-v2 (or any sentence-transformers BERT with mean pooling): text -> L2-normalized
/// sentence embedding, computed in float32 exactly like the sentence-transformers pipeline
/// (Transformer -> mean Pooling over all tokens -> Normalize).
///
/// Thread-safe: the weights are read-only and every call allocates its own activations.
public final class MiniLMEmbedder: @unchecked Sendable {
    /// `all-MiniLM-L6-v2` in the folder of installed files (`CartridgesHome`), where the set-up
    /// installs it.
    public static var defaultDirectory: URL {
        CartridgesHome.directory.appendingPathComponent("all-MiniLM-L6-v2")
    }

    /// The encoder's shape, from the model directory.
    public let config: MiniLMConfig
    /// The model's WordPiece tokenizer (`vocab.txt`, cut to `config.maxSequenceLength`).
    public let tokenizer: WordPieceTokenizer
    /// Length of every embedding (384 for all-MiniLM-L6-v2).
    public let dimension: Int

    private struct Layer {
        let qkvWeight: FloatBuffer      // (3*hidden, hidden): query rows, key rows, value rows
        let qkvBias: FloatBuffer        // (3*hidden)
        let attnOutWeight: FloatBuffer  // (hidden, hidden)
        let attnOutBias: FloatBuffer    // (hidden)
        let attnNormGamma: FloatBuffer  // (hidden)
        let attnNormBeta: FloatBuffer   // (hidden)
        let upWeight: FloatBuffer       // (intermediate, hidden)
        let upBias: FloatBuffer         // (intermediate)
        let downWeight: FloatBuffer     // (hidden, intermediate)
        let downBias: FloatBuffer       // (hidden)
        let outNormGamma: FloatBuffer   // (hidden)
        let outNormBeta: FloatBuffer    // (hidden)
    }

    private let wordEmbeddings: FloatBuffer      // (vocab, hidden)
    private let positionEmbeddings: FloatBuffer  // (maxPositions, hidden)
    private let tokenTypeEmbedding: FloatBuffer  // (hidden): row 0 of the token-type table
    private let embedNormGamma: FloatBuffer      // (hidden)
    private let embedNormBeta: FloatBuffer       // (hidden)
    private let layers: [Layer]

    /// Loads `config.json`, `vocab.txt` and `model.safetensors` from `directory` (optional:
    /// `sentence_bert_config.json` for the max length, `tokenizer_config.json` for casing,
    /// `1_Pooling/config.json`, which must ask for mean pooling).
    public init(directory: URL, logger: Logger = Logger(label: "cartridges.embedding")) throws {
        let start = ContinuousClock.now
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw EmbedderError.directoryNotFound(path: directory.path)
        }
        let configURL = directory.appendingPathComponent("config.json")
        guard let json = try Self.readJSON(configURL, required: true) else { throw EmbedderError.missingFile(path: configURL.path) }
        config = try Self.parseConfig(json, path: configURL.path, directory: directory)
        dimension = config.hiddenSize

        let tokenizerConfig = try Self.readJSON(directory.appendingPathComponent("tokenizer_config.json"), required: false)
        let lowercase = (tokenizerConfig?["do_lower_case"] as? Bool) ?? true
        let vocabURL = directory.appendingPathComponent("vocab.txt")
        guard FileManager.default.fileExists(atPath: vocabURL.path) else { throw EmbedderError.missingFile(path: vocabURL.path) }
        do {
            tokenizer = try WordPieceTokenizer(vocabularyURL: vocabURL, maxLength: config.maxSequenceLength, lowercase: lowercase)
        } catch let e as WordPieceError { throw EmbedderError.vocabulary(e) }
        guard tokenizer.vocabulary.count <= config.vocabSize else {
            throw EmbedderError.vocabularyTooLarge(path: vocabURL.path, tokens: tokenizer.vocabulary.count, embeddingRows: config.vocabSize)
        }

        let weightsURL = directory.appendingPathComponent("model.safetensors")
        guard FileManager.default.fileExists(atPath: weightsURL.path) else { throw EmbedderError.missingFile(path: weightsURL.path) }
        do {
            let file = try SafeTensorsFile(path: weightsURL.path)
            let prefix = file.tensors["embeddings.word_embeddings.weight"] == nil && file.tensors["bert.embeddings.word_embeddings.weight"] != nil ? "bert." : ""
            let c = config, d = c.hiddenSize
            func buffer(_ name: String, _ shape: [Int]) throws -> FloatBuffer {
                FloatBuffer(try file.floats(prefix + name, shape: shape))
            }
            wordEmbeddings = try buffer("embeddings.word_embeddings.weight", [c.vocabSize, d])
            positionEmbeddings = try buffer("embeddings.position_embeddings.weight", [c.maxPositions, d])
            tokenTypeEmbedding = FloatBuffer(Array(try file.floats(prefix + "embeddings.token_type_embeddings.weight",
                                                                   shape: [c.typeVocabSize, d]).prefix(d)))
            embedNormGamma = try buffer("embeddings.LayerNorm.weight", [d])
            embedNormBeta = try buffer("embeddings.LayerNorm.bias", [d])
            layers = try (0..<c.layers).map { l in
                let p = prefix + "encoder.layer.\(l)."
                func w(_ name: String, _ shape: [Int]) throws -> [Float] { try file.floats(p + name, shape: shape) }
                return Layer(
                    qkvWeight: FloatBuffer(try w("attention.self.query.weight", [d, d]) + w("attention.self.key.weight", [d, d])
                                           + w("attention.self.value.weight", [d, d])),
                    qkvBias: FloatBuffer(try w("attention.self.query.bias", [d]) + w("attention.self.key.bias", [d])
                                         + w("attention.self.value.bias", [d])),
                    attnOutWeight: FloatBuffer(try w("attention.output.dense.weight", [d, d])),
                    attnOutBias: FloatBuffer(try w("attention.output.dense.bias", [d])),
                    attnNormGamma: FloatBuffer(try w("attention.output.LayerNorm.weight", [d])),
                    attnNormBeta: FloatBuffer(try w("attention.output.LayerNorm.bias", [d])),
                    upWeight: FloatBuffer(try w("intermediate.dense.weight", [c.intermediateSize, d])),
                    upBias: FloatBuffer(try w("intermediate.dense.bias", [c.intermediateSize])),
                    downWeight: FloatBuffer(try w("output.dense.weight", [d, c.intermediateSize])),
                    downBias: FloatBuffer(try w("output.dense.bias", [d])),
                    outNormGamma: FloatBuffer(try w("output.LayerNorm.weight", [d])),
                    outNormBeta: FloatBuffer(try w("output.LayerNorm.bias", [d])))
            }
        } catch let e as SafeTensorsError { throw EmbedderError.safeTensors(e) }
        logger.debug("loaded embedder \(directory.lastPathComponent): \(config.layers) layers, dim \(config.hiddenSize), in \(ContinuousClock.now - start)")
    }

    /// `[CLS]`, the WordPiece ids of `text` (cut to `maxSequenceLength - 2`), `[SEP]`.
    public func tokenize(_ text: String) -> [Int] { tokenizer.encode(text) }

    /// The L2-normalized mean of the last layer's token vectors (`dimension` floats).
    public func embed(_ text: String) -> [Float] { embed(ids: tokenize(text)) }

    /// One embedding per text, each computed alone (no padding), so equal to `embed(text)`.
    public func embed(_ texts: [String]) -> [[Float]] { texts.map { embed($0) } }

    /// The embedding of a list of ids (as `tokenize` returns them). Ids outside the vocabulary are
    /// read as `[UNK]`; the list is cut to `maxSequenceLength`; an empty list embeds `[CLS] [SEP]`.
    public func embed(ids rawIDs: [Int]) -> [Float] {
        var ids = rawIDs.prefix(config.maxSequenceLength).map { (0..<config.vocabSize).contains($0) ? $0 : tokenizer.unknownID }
        if ids.isEmpty { ids = [tokenizer.classID, tokenizer.separatorID] }
        let hidden = encode(ids)
        return Self.meanPoolAndNormalize(hidden.pointer, rows: ids.count, dim: dimension)
    }

    /// The last layer's hidden states, (n, hidden), for n ids at positions 0..<n.
    func encode(_ ids: [Int]) -> FloatBuffer {
        let c = config, n = ids.count, d = c.hiddenSize, hd = c.headDim, inner = c.intermediateSize
        let x = FloatBuffer(count: n * d)                // (n, d) the residual stream
        let tmp = FloatBuffer(count: n * d)              // (n, d) the next residual stream
        let qkv = FloatBuffer(count: n * 3 * d)          // (n, 3d): queries | keys | values
        let scores = FloatBuffer(count: c.heads * n * n) // (heads, n, n) attention probabilities
        let context = FloatBuffer(count: n * d)          // (n, d) heads side by side
        let up = FloatBuffer(count: n * inner)           // (n, intermediate)

        // Embeddings: word + position + token type 0, then LayerNorm.
        for (t, id) in ids.enumerated() {
            let row = x.pointer + t * d
            row.update(from: wordEmbeddings.pointer + id * d, count: d)
            Vector.add(positionEmbeddings.pointer + t * d, into: row, d)
            Vector.add(tokenTypeEmbedding.pointer, into: row, d)
        }
        EncoderOps.layerNorm(x.pointer, gamma: embedNormGamma.pointer, beta: embedNormBeta.pointer, rows: n, dim: d, eps: c.layerNormEps)

        let scale = 1 / Float(hd).squareRoot()
        for layer in layers {
            // qkv (n, 3d) = x (n, d) Wqkv^T (d, 3d) + bias
            for t in 0..<n { (qkv.pointer + t * 3 * d).update(from: layer.qkvBias.pointer, count: 3 * d) }
            BLAS.gemm(transB: true, m: n, n: 3 * d, k: d, a: x.pointer, lda: d, b: layer.qkvWeight.pointer, ldb: d,
                      beta: 1, c: qkv.pointer, ldc: 3 * d)
            // scores_h (n, n) = scale Q_h (n, hd) K_h^T (hd, n); softmax over each row (no mask)
            for h in 0..<c.heads {
                BLAS.gemm(transB: true, m: n, n: n, k: hd, alpha: scale, a: qkv.pointer + h * hd, lda: 3 * d,
                          b: qkv.pointer + d + h * hd, ldb: 3 * d, c: scores.pointer + h * n * n, ldc: n)
            }
            let probabilities = SendablePointer(scores.pointer)
            parallelRows(c.heads * n) { rows in
                for r in rows { Softmax.forward(probabilities.pointer + r * n, valid: n, width: n) }
            }
            // context_h (n, hd) = P_h (n, n) V_h (n, hd)
            for h in 0..<c.heads {
                BLAS.gemm(m: n, n: hd, k: n, a: scores.pointer + h * n * n, lda: n, b: qkv.pointer + 2 * d + h * hd, ldb: 3 * d,
                          c: context.pointer + h * hd, ldc: d)
            }
            // tmp (n, d) = LayerNorm(x + bias + context Wo^T)
            tmp.pointer.update(from: x.pointer, count: n * d)
            EncoderOps.addBias(tmp.pointer, layer.attnOutBias.pointer, rows: n, dim: d)
            BLAS.gemm(transB: true, m: n, n: d, k: d, a: context.pointer, lda: d, b: layer.attnOutWeight.pointer, ldb: d,
                      beta: 1, c: tmp.pointer, ldc: d)
            EncoderOps.layerNorm(tmp.pointer, gamma: layer.attnNormGamma.pointer, beta: layer.attnNormBeta.pointer, rows: n, dim: d, eps: c.layerNormEps)
            // up (n, inner) = GELU(tmp Wup^T + bias)
            for t in 0..<n { (up.pointer + t * inner).update(from: layer.upBias.pointer, count: inner) }
            BLAS.gemm(transB: true, m: n, n: inner, k: d, a: tmp.pointer, lda: d, b: layer.upWeight.pointer, ldb: d,
                      beta: 1, c: up.pointer, ldc: inner)
            EncoderOps.gelu(up.pointer, count: n * inner)
            // x (n, d) = LayerNorm(tmp + bias + up Wdown^T)
            x.pointer.update(from: tmp.pointer, count: n * d)
            EncoderOps.addBias(x.pointer, layer.downBias.pointer, rows: n, dim: d)
            BLAS.gemm(transB: true, m: n, n: d, k: inner, a: up.pointer, lda: inner, b: layer.downWeight.pointer, ldb: inner,
                      beta: 1, c: x.pointer, ldc: d)
            EncoderOps.layerNorm(x.pointer, gamma: layer.outNormGamma.pointer, beta: layer.outNormBeta.pointer, rows: n, dim: d, eps: c.layerNormEps)
        }
        return x
    }

    /// mean over rows of hidden (rows, dim), divided by its L2 norm (at least 1e-12), in float64.
    static func meanPoolAndNormalize(_ hidden: UnsafePointer<Float>, rows: Int, dim: Int) -> [Float] {
        var mean = [Double](repeating: 0, count: dim)
        for t in 0..<rows {
            for i in 0..<dim { mean[i] += Double(hidden[t * dim + i]) }
        }
        for i in 0..<dim { mean[i] /= Double(max(rows, 1)) }
        let norm = max(mean.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
        return mean.map { Float($0 / norm) }
    }

    // MARK: - Configuration files

    /// The JSON object in `url`; nil when the file is absent and not required.
    private static func readJSON(_ url: URL, required: Bool) throws -> [String: Any]? {
        guard FileManager.default.fileExists(atPath: url.path) else {
            if required { throw EmbedderError.missingFile(path: url.path) }
            return nil
        }
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw EmbedderError.invalidJSON(path: url.path, reason: error.localizedDescription)
        }
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw EmbedderError.invalidJSON(path: url.path, reason: error.localizedDescription)
        }
        guard let dict = object as? [String: Any] else {
            throw EmbedderError.invalidJSON(path: url.path, reason: "the top level is not an object")
        }
        return dict
    }

    private static func parseConfig(_ json: [String: Any], path: String, directory: URL) throws -> MiniLMConfig {
        func int(_ key: String, default value: Int? = nil) throws -> Int {
            guard let raw = json[key] else {
                if let value { return value }
                throw EmbedderError.invalidConfig(path: path, key: key, reason: "is missing")
            }
            guard let i = raw as? Int, i > 0, i <= 1 << 20 else {
                throw EmbedderError.invalidConfig(path: path, key: key, reason: "must be a positive integer (found \(raw))")
            }
            return i
        }
        let hidden = try int("hidden_size"), heads = try int("num_attention_heads")
        guard hidden % heads == 0 else {
            throw EmbedderError.invalidConfig(path: path, key: "num_attention_heads", reason: "(\(heads)) must divide hidden_size (\(hidden))")
        }
        let eps: Float
        switch json["layer_norm_eps"] {
        case nil: eps = 1e-12
        case let e as Double where e > 0 && e < 1: eps = Float(e)
        case let other?: throw EmbedderError.invalidConfig(path: path, key: "layer_norm_eps", reason: "must be a small positive number (found \(other))")
        }
        if let act = json["hidden_act"], act as? String != "gelu" {
            throw EmbedderError.unsupportedConfig(path: path, reason: "hidden_act is \(act), not gelu")
        }
        if let kind = json["position_embedding_type"], kind as? String != "absolute" {
            throw EmbedderError.unsupportedConfig(path: path, reason: "position_embedding_type is \(kind), not absolute")
        }
        let maxPositions = try int("max_position_embeddings")

        let stPath = directory.appendingPathComponent("sentence_bert_config.json")
        var maxSequence = maxPositions
        if let st = try readJSON(stPath, required: false), let raw = st["max_seq_length"] {
            guard let m = raw as? Int, m >= 2 else {
                throw EmbedderError.invalidConfig(path: stPath.path, key: "max_seq_length", reason: "must be an integer of at least 2 (found \(raw))")
            }
            maxSequence = min(m, maxPositions)
        }
        let poolingPath = directory.appendingPathComponent("1_Pooling/config.json")
        if let pooling = try readJSON(poolingPath, required: false), pooling["pooling_mode_mean_tokens"] as? Bool != true {
            throw EmbedderError.unsupportedConfig(path: poolingPath.path, reason: "pooling_mode_mean_tokens is not true")
        }
        return MiniLMConfig(hiddenSize: hidden, layers: try int("num_hidden_layers"), heads: heads,
                            intermediateSize: try int("intermediate_size"), layerNormEps: eps, maxPositions: maxPositions,
                            vocabSize: try int("vocab_size"), typeVocabSize: try int("type_vocab_size", default: 2),
                            maxSequenceLength: maxSequence)
    }
}
