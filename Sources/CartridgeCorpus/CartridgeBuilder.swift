import CartridgeEmbedding
import CartridgeFormat
import CartridgeKernels
import CartridgeModel
import Foundation
import Logging

/// Makes cartridges without training: the paper's initialization (the KV cache of the corpus'
/// first p tokens, rendered as a system message), plus retrieval vectors for every passage.
public enum CartridgeBuilder {
    /// The version written into every cartridge's metadata.
    public static let toolVersion = "cartridges 0.1.0"

    /// `<|im_start|>system\n` followed by the documents (separated by blank lines), tokenized, cut
    /// to `size` tokens (fewer if the corpus is shorter). No `<|im_end|>`: the cartridge is the
    /// opening of a system message that the model reads as context.
    public static func prefixIDs(documents: [Document], tokenizer: Tokenizer, size: Int) -> [Int] {
        let header = tokenizer.encode("<|im_start|>system\n", parseSpecial: true)
        var ids = header
        for (i, d) in documents.enumerated() {
            if ids.count >= size { break }
            ids += tokenizer.encode((i == 0 ? "" : "\n\n") + d.text, parseSpecial: false)
        }
        return Array(ids.prefix(size))
    }

    /// Retrieval passages of every document (with their words, for lexical scoring) and their
    /// embeddings, (passages, dimension).
    public static func retrievalVectors(documents: [Document], embedder: MiniLMEmbedder) -> ([RetrievalPassage], [Float]) {
        var passages: [RetrievalPassage] = []
        var vectors: [Float] = []
        for (s, d) in documents.enumerated() {
            for piece in PassageSplitter.passages(d.text) {
                passages.append(RetrievalPassage(source: s, start: piece.start, end: piece.end, preview: String(piece.text.prefix(120)),
                                                 terms: PassageTerms(text: piece.text)))
                vectors += embedder.embed(piece.text)
            }
        }
        return (passages, vectors)
    }

    /// Metadata shared by every cartridge made by this tool.
    public static func metadata(name: String, model: LanguageModel, identity: ModelIdentity, length: Int, frozen: Int, dtype: TensorDType,
                                documents: [Document], chunks: [RetrievalPassage], embeddingDimension: Int,
                                recipe: [String: JSONValue], results: [String: JSONValue]) -> CartridgeMetadata {
        let c = model.config
        return CartridgeMetadata(
            name: name, model: identity, layers: c.layers, kvHeads: c.kvHeads, headDim: c.headDim,
            length: length, frozenSlots: frozen, dtype: dtype,
            rope: RoPEConvention(layout: "adjacent-pairs", base: c.ropeBase, positions: "0..<\(length)", keysRotated: true),
            tokenizerHash: model.tokenizer.fingerprint, toolVersion: toolVersion, createdAt: CartridgeMetadata.timestamp(),
            recipe: recipe, results: results,
            sources: documents.map { SourceDocument(path: $0.path, sha256: $0.sha256, bytes: $0.bytes) },
            embeddingModel: "sentence-transformers/all-MiniLM-L6-v2", embeddingDimension: embeddingDimension, chunks: chunks)
    }

    /// Keys and values, each (layers, kvHeads, p, headDim), of the KV cache the model builds over
    /// `ids` at positions 0..<p: the paper's initialization of a cartridge.
    public static func kvTensors(model: LlamaModel, ids: [Int]) -> (keys: [Float], values: [Float]) {
        let cache = model.makeCache(capacity: ids.count)
        _ = model.forward(tokens: [ids], caches: [cache])
        let c = model.config
        var keys = [Float](repeating: 0, count: c.layers * c.kvHeads * ids.count * c.headDim), values = keys
        keys.withUnsafeMutableBufferPointer { k in
            values.withUnsafeMutableBufferPointer { v in
                KVSlots(keys: k.baseAddress!, values: v.baseAddress!, layers: c.layers, kvHeads: c.kvHeads, headDim: c.headDim, slots: ids.count)
                    .copy(count: ids.count, from: cache.slots)
            }
        }
        return (keys, values)
    }

    /// The corpus as the model reads it in context: `<|im_start|>system\n{documents}<|im_end|>\n`
    /// (documents separated by blank lines), cut into consecutive system turns of at most `limit`
    /// tokens when it is longer.
    public static func contextSegments(documents: [Document], tokenizer: Tokenizer, limit: Int) -> [[Int]] {
        var corpus: [Int] = []
        for (i, d) in documents.enumerated() { corpus += tokenizer.encode((i == 0 ? "" : "\n\n") + d.text, parseSpecial: false) }
        let room = max(1, limit - StudentPrompt.systemTurn([], tokenizer: tokenizer).count)
        return stride(from: 0, to: max(corpus.count, 1), by: room).map { StudentPrompt.systemTurn(corpus[$0..<min(corpus.count, $0 + room)], tokenizer: tokenizer) }
    }

    /// The initial keys and values, each (layers, kvHeads, p, headDim), of a cartridge of `size`
    /// slots (p: fewer when the corpus is shorter): the KV of the corpus' first tokens, or of the
    /// tokens attention uses most (`InitSelection`).
    public static func initialTensors(documents: [Document], model lm: LanguageModel, size: Int,
                                      selection: InitSelection, keepFirst: Int = 1) -> (keys: [Float], values: [Float], length: Int) {
        switch selection {
        case .first:
            let ids = prefixIDs(documents: documents, tokenizer: lm.tokenizer, size: size)
            let (keys, values) = kvTensors(model: lm.model, ids: ids)
            return (keys, values, ids.count)
        case .attention:
            let segments = contextSegments(documents: documents, tokenizer: lm.tokenizer, limit: lm.config.contextLength)
            return AttentionSelection.kvTensors(model: lm.model, segments: segments, size: size, keepFirst: keepFirst)
        }
    }

    /// An untrained cartridge of `size` slots for the documents, for the model `lm` whose
    /// identity is `identity`, with retrieval vectors from `embedder`.
    public static func initialize(documents: [Document], model lm: LanguageModel, identity: ModelIdentity, embedder: MiniLMEmbedder,
                                  size: Int, name: String, dtype: TensorDType = .f16, selection: InitSelection = .first, keepFirst: Int = 1,
                                  logger: Logger = Logger(label: "cartridges.init")) throws -> Cartridge {
        try lm.model.checkContext(size, what: "the cartridge size")
        let (keys, values, p) = initialTensors(documents: documents, model: lm, size: size, selection: selection, keepFirst: keepFirst)
        if p < size {
            logger.warning("the corpus has only \(p) tokens with its header; the cartridge gets \(p) slots instead of \(size)")
        }
        let (chunks, vectors) = retrievalVectors(documents: documents, embedder: embedder)
        let meta = metadata(name: name, model: lm, identity: identity, length: p, frozen: 1, dtype: dtype, documents: documents, chunks: chunks,
                            embeddingDimension: embedder.dimension,
                            recipe: ["method": .string("init"), "selection": .string(selection.rawValue), "keep_first": .number(Double(keepFirst)),
                                     "prefix_tokens": .number(Double(p))],
                            results: [:])
        return Cartridge(metadata: meta, keys: keys, values: values, retrievalVectors: vectors)
    }
}
