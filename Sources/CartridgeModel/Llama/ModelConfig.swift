/// Hyper-parameters of a llama-architecture model, read from GGUF metadata.
public struct ModelConfig: Codable, Sendable, Equatable {
    public var name: String
    public var architecture: String
    public var layers: Int
    public var dim: Int
    public var heads: Int
    public var kvHeads: Int
    public var headDim: Int
    public var ffnDim: Int
    public var vocabSize: Int
    public var ropeBase: Double
    public var rmsEps: Float
    public var contextLength: Int
    /// True when the LM head is the token embedding (no `output.weight` tensor).
    public var tiedOutput: Bool

    /// Query heads that share one KV head.
    public var groupSize: Int { heads / kvHeads }
    /// Values one token occupies in a KV cache: layers x 2 x kvHeads x headDim.
    public var kvValuesPerToken: Int { layers * 2 * kvHeads * headDim }

    /// Largest values accepted from metadata: far above any llama model, low enough that no
    /// product of them (weights, KV caches) overflows.
    public static let limits = (layers: 1024, dim: 65_536, ffnDim: 1 << 20, vocabSize: 1 << 24, contextLength: 1 << 24)

    /// Reads and validates the configuration. Required keys throw `GGUFError.missingKey` when
    /// absent; values out of range or inconsistent (zero heads, a dimension that the heads do
    /// not divide, ...) throw `GGUFError.badHyperparameter` naming the key and the limit.
    public init(gguf: GGUFFile) throws {
        let arch = try gguf.string("general.architecture")
        guard arch == "llama" else {
            throw GGUFError.wrongKeyType(key: "general.architecture", expected: "\"llama\"", found: "\"\(arch)\"")
        }
        architecture = arch
        name = (try gguf.optionalString("general.name")) ?? "unnamed"
        func bounded(_ key: String, _ value: Int, _ limit: Int) throws -> Int {
            guard value >= 1, value <= limit else {
                throw GGUFError.badHyperparameter(key: "\(arch).\(key)", value: "\(value)", requirement: "between 1 and \(limit)")
            }
            return value
        }
        let l = Self.limits
        layers = try bounded("block_count", try gguf.int("\(arch).block_count"), l.layers)
        dim = try bounded("embedding_length", try gguf.int("\(arch).embedding_length"), l.dim)
        heads = try bounded("attention.head_count", try gguf.int("\(arch).attention.head_count"), dim)
        kvHeads = try bounded("attention.head_count_kv", (try gguf.optionalInt("\(arch).attention.head_count_kv")) ?? heads, heads)
        ffnDim = try bounded("feed_forward_length", try gguf.int("\(arch).feed_forward_length"), l.ffnDim)
        ropeBase = (try gguf.optionalDouble("\(arch).rope.freq_base")) ?? 10000
        guard ropeBase.isFinite, ropeBase > 0 else {
            throw GGUFError.badHyperparameter(key: "\(arch).rope.freq_base", value: "\(ropeBase)", requirement: "a positive finite number")
        }
        let eps = try gguf.double("\(arch).attention.layer_norm_rms_epsilon")
        guard eps.isFinite, eps >= 0, eps < 1 else {
            throw GGUFError.badHyperparameter(key: "\(arch).attention.layer_norm_rms_epsilon", value: "\(eps)", requirement: "in [0, 1)")
        }
        rmsEps = Float(eps)
        contextLength = try bounded("context_length", (try gguf.optionalInt("\(arch).context_length")) ?? 2048, l.contextLength)
        tiedOutput = gguf.tensors["output.weight"] == nil
        guard dim % heads == 0 else {
            throw GGUFError.badHyperparameter(key: "\(arch).attention.head_count", value: "\(heads)",
                                              requirement: "a divisor of the embedding length \(dim)")
        }
        guard heads % kvHeads == 0 else {
            throw GGUFError.badHyperparameter(key: "\(arch).attention.head_count_kv", value: "\(kvHeads)",
                                              requirement: "a divisor of the head count \(heads)")
        }
        headDim = (try gguf.optionalInt("\(arch).rope.dimension_count")) ?? (dim / heads)
        guard headDim == dim / heads, headDim % 2 == 0 else {
            throw GGUFError.badHyperparameter(key: "\(arch).rope.dimension_count", value: "\(headDim)",
                                              requirement: "the head dimension \(dim / heads) (embedding length / heads), and even")
        }
        if let v = try gguf.optionalInt("\(arch).vocab_size") {
            vocabSize = try bounded("vocab_size", v, l.vocabSize)
        } else if let tokens = gguf.metadata["tokenizer.ggml.tokens"]?.array {
            vocabSize = try bounded("vocab_size (the number of tokenizer.ggml.tokens)", tokens.count, l.vocabSize)
        } else {
            guard let emb = gguf.tensors["token_embd.weight"], emb.shape.count == 2 else { throw GGUFError.missingTensor("token_embd.weight") }
            vocabSize = try bounded("vocab_size (rows of token_embd.weight)", emb.shape[1], l.vocabSize)
        }
    }

    /// A configuration built directly (tests use tiny random models).
    public init(name: String, layers: Int, dim: Int, heads: Int, kvHeads: Int, ffnDim: Int, vocabSize: Int,
                ropeBase: Double = 10000, rmsEps: Float = 1e-5, contextLength: Int = 2048) {
        self.name = name
        architecture = "llama"
        self.layers = layers
        self.dim = dim
        self.heads = heads
        self.kvHeads = kvHeads
        headDim = dim / heads
        self.ffnDim = ffnDim
        self.vocabSize = vocabSize
        self.ropeBase = ropeBase
        self.rmsEps = rmsEps
        self.contextLength = contextLength
        tiedOutput = true
    }
}
