import CartridgeEmbedding
import CartridgeFormat
import CartridgeKernels
import CartridgeModel
import Foundation
import Logging

/// The library to embed: a frozen model, cartridges for it, retrieval, composition and answers.
///
/// ```swift
/// let runtime = try CartridgeRuntime(model: LanguageModel())
/// let library = try runtime.openLibrary(URL(fileURLWithPath: "cartridges"))
/// let found = try runtime.retrieve("Which pens does the author use?", in: library, k: 1)
/// let answer = try runtime.answer("Which pens does the author use?",
///                                 with: try found.map { try library.load($0.entry) }) { _, piece in
///     print(piece, terminator: ""); return true
/// }
/// ```
public final class CartridgeRuntime: @unchecked Sendable {
    public let model: LanguageModel
    /// The model's identity, checked against every cartridge loaded.
    public let identity: ModelIdentity
    public let embedderDirectory: URL
    private var embedderInstance: MiniLMEmbedder?
    private let lock = NSLock()
    let logger: Logger

    public init(model: LanguageModel, embedderDirectory: URL = MiniLMEmbedder.defaultDirectory,
                logger: Logger = Logger(label: "cartridges.runtime")) throws {
        self.model = model
        self.identity = ModelIdentity(name: model.config.name, fingerprint: try ModelFingerprint.fingerprint(of: model))
        self.embedderDirectory = embedderDirectory
        self.logger = logger
    }

    /// The sentence embedder for retrieval, loaded on first use.
    public func embedder() throws -> MiniLMEmbedder {
        lock.lock()
        defer { lock.unlock() }
        if let e = embedderInstance { return e }
        guard FileManager.default.fileExists(atPath: embedderDirectory.appendingPathComponent("config.json").path) else {
            throw RuntimeError.noEmbedder(path: embedderDirectory.path)
        }
        let e = try MiniLMEmbedder(directory: embedderDirectory)
        embedderInstance = e
        return e
    }

    /// Loads one cartridge file, refusing one made for another model or of another shape.
    public func load(_ url: URL) throws -> LoadedCartridge {
        let c = try CartFile.read(from: url, expectedModel: identity)
        let loaded = LoadedCartridge(name: url.deletingPathExtension().lastPathComponent, cartridge: c)
        try checkGeometry(loaded)
        return loaded
    }

    /// Opens a directory of cartridges for retrieval (tensors load lazily, LRU within `memoryBudget`).
    public func openLibrary(_ directory: URL, memoryBudget: Int = 1 << 30) throws -> CartridgeLibrary {
        try CartridgeLibrary(directory: directory, model: identity, embeddingDimension: try embedder().dimension,
                             memoryBudget: memoryBudget, logger: logger)
    }

    /// The retrieval query of a text: its embedding and its words.
    public func query(_ text: String) throws -> RetrievalQuery {
        RetrievalQuery(vector: try embedder().embed(text), text: text)
    }

    /// The k cartridges of the library that best match the query, best first.
    public func retrieve(_ query: String, in library: CartridgeLibrary, k: Int) throws -> [(entry: CartridgeLibrary.Entry, score: Float)] {
        library.search(try self.query(query), k: k)
    }

    /// A KV cache holding the cartridges one after another along the token axis (each with its own
    /// sink slot, keys as stored: no re-rotation), with room for `extraCapacity` more tokens, whose
    /// positions then start at the total prefix length.
    public func makeCache(_ cartridges: [LoadedCartridge], extraCapacity: Int) throws -> KVCache {
        let total = cartridges.reduce(0) { $0 + $1.length }
        guard total + extraCapacity <= model.config.contextLength else {
            throw RuntimeError.contextOverflow(needed: total + extraCapacity, available: model.config.contextLength)
        }
        let cache = model.model.makeCache(capacity: total + extraCapacity)
        var offset = 0
        for c in cartridges {
            try checkGeometry(c)
            cache.slots.copy(count: c.length, from: c.slots, to: offset)
            offset += c.length
        }
        cache.advance(by: total)
        return cache
    }

    /// The prompt of a question: with cartridges, the student prompt they were trained on
    /// (`StudentPrompt`); without, the plain chat with the model's default system prompt.
    public func promptIDs(_ question: String, withCartridges: Bool) -> [Int] {
        withCartridges ? StudentPrompt.ids(question: question, tokenizer: model.tokenizer)
                       : model.chatIDs([ChatMessage(.user, question)])
    }

    /// The prompt of a whole chat, each turn `<|im_start|>role\n{content}<|im_end|>\n` with its
    /// framing as special tokens and its content as plain text (special-token names a user writes
    /// stay text), then the assistant's opening. With cartridges no system prompt is added (they
    /// stand in for it), so one user message gives exactly `StudentPrompt`'s ids; without, the
    /// model's default system prompt comes first unless the chat starts with its own.
    public func promptIDs(_ messages: [ChatMessage], withCartridges: Bool) -> [Int] {
        let tokenizer = model.tokenizer
        var turns = messages
        if !withCartridges, messages.first?.role != .system, let system = model.template.defaultSystemPrompt {
            turns.insert(ChatMessage(.system, system), at: 0)
        }
        var ids: [Int] = []
        for m in turns {
            ids += tokenizer.encode("<|im_start|>\(m.role.rawValue)\n", parseSpecial: true)
            ids += tokenizer.encode(m.content, parseSpecial: false)
            ids += tokenizer.encode("<|im_end|>\n", parseSpecial: true)
        }
        return ids + tokenizer.encode("<|im_start|>assistant\n", parseSpecial: true)
    }

    /// Answers a question with the given cartridges in front (none: the plain model, with its
    /// default system prompt). `onToken` receives each id and the newly completed text.
    public func answer(_ question: String, with cartridges: [LoadedCartridge], maxTokens: Int = 256,
                       sampling: SamplingParameters = .greedy, onToken: ((Int, String) -> Bool)? = nil) throws -> Generation {
        let ids = promptIDs(question, withCartridges: !cartridges.isEmpty)
        let cache = try makeCache(cartridges, extraCapacity: ids.count + maxTokens)
        return try model.generate(promptIDs: ids, cache: cache, maxTokens: maxTokens, sampling: sampling, onToken: onToken)
    }

    /// Answers with documents in the context instead of cartridges (the in-context baseline a
    /// cartridge is trained to imitate): the documents, blank-line separated, as the system
    /// message, then the question as one user turn. Throws `ModelInputError` when they do not fit
    /// the context.
    public func answer(_ question: String, context documents: [String], maxTokens: Int = 256,
                       sampling: SamplingParameters = .greedy, onToken: ((Int, String) -> Bool)? = nil) throws -> Generation {
        let ids = promptIDs([ChatMessage(.system, documents.joined(separator: "\n\n")), ChatMessage(.user, question)], withCartridges: true)
        return try model.generate(promptIDs: ids, maxTokens: maxTokens, sampling: sampling, onToken: onToken)
    }

    private func checkGeometry(_ c: LoadedCartridge) throws {
        let m = c.metadata, cfg = model.config
        guard m.layers == cfg.layers, m.kvHeads == cfg.kvHeads, m.headDim == cfg.headDim else {
            throw RuntimeError.geometryMismatch(cartridge: c.name, found: "\(m.layers) layers x \(m.kvHeads) KV heads x \(m.headDim)",
                                                expected: "\(cfg.layers) x \(cfg.kvHeads) x \(cfg.headDim)")
        }
    }
}
