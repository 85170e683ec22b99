import CartridgeKernels
import Foundation
import Logging

/// Result of one generation.
public struct Generation: Sendable, Equatable {
    /// Generated ids, including the stop token when one was produced.
    public var ids: [Int]
    public var text: String
    /// True when generation ended on a stop token rather than the token limit.
    public var stopped: Bool
}

/// A model ready to use: weights, tokenizer and chat template from one GGUF file.
public final class LanguageModel: @unchecked Sendable {
    public let path: String
    public let gguf: GGUFFile
    public let model: LlamaModel
    public let tokenizer: Tokenizer
    public let template: ChatTemplate
    /// Ids that end an answer: EOS, `<|im_end|>`, `<|endoftext|>`.
    public let stopTokens: Set<Int>
    public var config: ModelConfig { model.config }
    let logger: Logger

    /// Loads a model; `path` defaults to the cached default model.
    public convenience init(path: String? = nil, logger: Logger = Logger(label: "cartridges.model")) throws {
        let p = path ?? ModelLocation.defaultModelPath
        guard FileManager.default.fileExists(atPath: p) else { throw ModelLoadError.modelNotFound(path: p) }
        try self.init(gguf: try GGUFFile(path: p), logger: logger)
    }

    /// A model from a parsed GGUF file (a file on disk, or bytes in memory). Throws
    /// `GGUFError` or `TokenizerError` when the file is not a usable llama model.
    public init(gguf: GGUFFile, logger: Logger = Logger(label: "cartridges.model")) throws {
        self.path = gguf.path
        self.logger = logger
        self.gguf = gguf
        tokenizer = try Tokenizer(gguf: gguf)
        model = try LlamaModel.load(gguf: gguf, logger: logger)
        // every id the tokenizer makes must have a row in the embedding
        guard tokenizer.vocabularySize <= model.config.vocabSize else {
            throw GGUFError.badHyperparameter(key: "tokenizer.ggml.tokens", value: "\(tokenizer.vocabularySize) tokens",
                                              requirement: "at most the model's vocabulary of \(model.config.vocabSize)")
        }
        template = ChatTemplate()
        var stops = Set<Int>()
        if let e = tokenizer.eosID { stops.insert(e) }
        for t in ["<|im_end|>", "<|endoftext|>"] { if let id = tokenizer.id(forToken: t) { stops.insert(id) } }
        stopTokens = stops
    }

    /// Token ids of a chat rendered with the model's template (special tokens parsed, no BOS added).
    public func chatIDs(_ messages: [ChatMessage], addGenerationPrompt: Bool = true, includeDefaultSystem: Bool = true) -> [Int] {
        tokenizer.encode(template.render(messages, addGenerationPrompt: addGenerationPrompt,
                                         includeDefaultSystem: includeDefaultSystem), parseSpecial: true)
    }

    /// The last position's logits for `ids` fed at positions 0..<ids.count. Throws
    /// `ModelInputError` (before any work) when the ids are empty, outside the vocabulary or
    /// longer than the context.
    public func logits(ids: [Int]) throws -> FloatBuffer {
        try model.checkInput(ids)
        return prefill(ids, cache: model.makeCache(capacity: ids.count))
    }

    /// Runs ids into a cache in chunks (bounding scratch memory) and returns the last row's logits.
    public func prefill(_ ids: [Int], cache: KVCache, chunk: Int = 512) -> FloatBuffer {
        guard !ids.isEmpty else { fatalError("prefill: no ids") }
        var logits: FloatBuffer? = nil
        var i = 0
        while i < ids.count {
            let piece = Array(ids[i..<min(ids.count, i + chunk)])
            logits = model.forward(tokens: [piece], caches: [cache])
            i += piece.count
        }
        return logits!
    }

    /// Generates a continuation of `promptIDs` after whatever `cache` already holds (for example a
    /// cartridge). `onToken` receives each id and the newly completed text; return false to stop.
    public func generate(promptIDs: [Int], cache: KVCache? = nil, maxTokens: Int = 256,
                         sampling: SamplingParameters = .greedy,
                         onToken: ((Int, String) -> Bool)? = nil) throws -> Generation {
        try model.checkInput(promptIDs, cached: cache?.count ?? 0, extra: maxTokens,
                             what: maxTokens > 0 ? "the prompt and up to \(maxTokens) generated tokens" : "the prompt")
        let cache = cache ?? model.makeCache(capacity: promptIDs.count + maxTokens)
        guard cache.remaining >= promptIDs.count + maxTokens else {
            throw GenerationError.contextFull(needed: cache.count + promptIDs.count + maxTokens, capacity: cache.capacity)
        }
        var sampler = Sampler(sampling)
        var stream = tokenizer.streamingDecoder()
        var logits = prefill(promptIDs, cache: cache)
        var ids: [Int] = []
        var text = ""
        var stopped = false
        while ids.count < maxTokens {
            let next = sampler.sample(logits.pointer, count: config.vocabSize)
            ids.append(next)
            if stopTokens.contains(next) { stopped = true; break }
            let piece = stream.append(next)
            text += piece
            if let cb = onToken, !cb(next, piece) { break }
            if ids.count == maxTokens { break }
            logits = model.forward(tokens: [[next]], caches: [cache])
        }
        text += stream.finish()
        return Generation(ids: ids, text: text, stopped: stopped)
    }

    /// Generates continuations of several prompts together: prompts are prefilled one by one
    /// (after whatever their caches already hold), then all live sequences decode in one batched
    /// forward per step. `observe(sequence, logits)` sees every logits row before its token is
    /// chosen (for example to record a teacher's distribution); `finished(sequence, ids)` can end
    /// a sequence early after any token (its `stopped` stays false).
    public func generateBatch(prompts: [[Int]], caches: [KVCache]? = nil, maxTokens: Int,
                              sampling: [SamplingParameters],
                              observe: ((Int, UnsafePointer<Float>) -> Void)? = nil,
                              finished: ((Int, [Int]) -> Bool)? = nil) throws -> [Generation] {
        invariant(sampling.count == prompts.count)
        for (s, p) in prompts.enumerated() {
            try model.checkInput(p, cached: caches?[s].count ?? 0, extra: maxTokens, what: "prompt \(s) and up to \(maxTokens) generated tokens")
        }
        let caches = caches ?? prompts.map { model.makeCache(capacity: $0.count + maxTokens) }
        for (p, c) in zip(prompts, caches) where c.remaining < p.count + maxTokens {
            throw GenerationError.contextFull(needed: c.count + p.count + maxTokens, capacity: c.capacity)
        }
        var samplers = sampling.map { Sampler($0) }
        var outputs = [[Int]](repeating: [], count: prompts.count)
        var done = [Bool](repeating: false, count: prompts.count)
        var stoppedFlags = done
        var live: [Int] = []
        var next: [Int] = []
        for (s, p) in prompts.enumerated() {
            let logits = prefill(p, cache: caches[s])
            observe?(s, logits.pointer)
            let t = samplers[s].sample(logits.pointer, count: config.vocabSize)
            outputs[s].append(t)
            if stopTokens.contains(t) { stoppedFlags[s] = true; done[s] = true }
            else if maxTokens <= 1 || finished?(s, outputs[s]) == true { done[s] = true }
            else { live.append(s); next.append(t) }
        }
        while !live.isEmpty {
            let logits = model.forward(tokens: next.map { [$0] }, caches: live.map { caches[$0] })
            var stillLive: [Int] = [], stillNext: [Int] = []
            for (i, s) in live.enumerated() {
                observe?(s, logits.pointer + i * config.vocabSize)
                let t = samplers[s].sample(logits.pointer + i * config.vocabSize, count: config.vocabSize)
                outputs[s].append(t)
                if stopTokens.contains(t) { stoppedFlags[s] = true; done[s] = true }
                else if outputs[s].count >= maxTokens || finished?(s, outputs[s]) == true { done[s] = true }
                else { stillLive.append(s); stillNext.append(t) }
            }
            live = stillLive
            next = stillNext
        }
        return outputs.enumerated().map { s, ids in
            let visible = stoppedFlags[s] ? Array(ids.dropLast()) : ids
            return Generation(ids: ids, text: tokenizer.decode(visible), stopped: stoppedFlags[s])
        }
    }
}

/// Errors from generation.
public enum GenerationError: Error, CustomStringConvertible {
    case contextFull(needed: Int, capacity: Int)
    case emptyPrompt

    public var description: String {
        switch self {
        case let .contextFull(needed, capacity):
            return "the prompt and answer need \(needed) KV slots but the cache holds \(capacity)"
        case .emptyPrompt: return "the prompt is empty"
        }
    }
}
