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

    /// Reads and validates the configuration. Required keys throw `GGUFError.missingKey` when absent.
    public init(gguf: GGUFFile) throws {
        let arch = try gguf.string("general.architecture")
        guard arch == "llama" else {
            throw GGUFError.wrongKeyType(key: "general.architecture", expected: "\"llama\"", found: "\"\(arch)\"")
        }
        architecture = arch
        name = (try gguf.optionalString("general.name")) ?? "unnamed"
        layers = try gguf.int("\(arch).block_count")
        dim = try gguf.int("\(arch).embedding_length")
        heads = try gguf.int("\(arch).attention.head_count")
        kvHeads = (try gguf.optionalInt("\(arch).attention.head_count_kv")) ?? heads
        ffnDim = try gguf.int("\(arch).feed_forward_length")
        ropeBase = (try gguf.optionalDouble("\(arch).rope.freq_base")) ?? 10000
        rmsEps = Float(try gguf.double("\(arch).attention.layer_norm_rms_epsilon"))
        contextLength = (try gguf.optionalInt("\(arch).context_length")) ?? 2048
        tiedOutput = gguf.tensors["output.weight"] == nil
        guard heads > 0, dim % heads == 0, kvHeads > 0, heads % kvHeads == 0, layers > 0 else {
            throw GGUFError.wrongKeyType(key: "\(arch).attention.head_count", expected: "a divisor of the embedding length and a multiple of head_count_kv",
                                         found: "\(heads) heads, \(kvHeads) KV heads, dim \(dim)")
        }
        headDim = (try gguf.optionalInt("\(arch).rope.dimension_count")) ?? (dim / heads)
        guard headDim == dim / heads, headDim % 2 == 0 else {
            throw GGUFError.wrongKeyType(key: "\(arch).rope.dimension_count", expected: "\(dim / heads)", found: "\(headDim)")
        }
        if let v = try gguf.optionalInt("\(arch).vocab_size") {
            vocabSize = v
        } else if let tokens = gguf.metadata["tokenizer.ggml.tokens"]?.array {
            vocabSize = tokens.count
        } else {
            guard let emb = gguf.tensors["token_embd.weight"], emb.shape.count == 2 else { throw GGUFError.missingTensor("token_embd.weight") }
            vocabSize = emb.shape[1]
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
