/// Why an input cannot be run through the model: it is longer than the context, or holds a token
/// id outside the vocabulary. Thrown before any work is done, naming the value and the limit.
public enum ModelInputError: Error, CustomStringConvertible, Equatable, Sendable {
    /// `what` ("the prompt", "the cartridge size", ...) needs `tokens` positions but the model
    /// has `context`.
    case contextOverflow(what: String, tokens: Int, context: Int)
    case tokenOutOfRange(id: Int, vocabSize: Int)
    case empty(what: String)

    public var description: String {
        switch self {
        case let .contextOverflow(what, tokens, context):
            return "\(what): \(tokens) tokens, but the model's context is \(context) tokens"
        case let .tokenOutOfRange(id, vocab):
            return "token id \(id) is outside the vocabulary (0..<\(vocab))"
        case let .empty(what):
            return "\(what) is empty"
        }
    }
}

extension LlamaModel {
    /// Throws unless `tokens` positions (after whatever a cache already holds) fit the context.
    public func checkContext(_ tokens: Int, what: String) throws {
        guard tokens <= config.contextLength else {
            throw ModelInputError.contextOverflow(what: what, tokens: tokens, context: config.contextLength)
        }
    }

    /// Throws unless `ids` is non-empty, every id is in the vocabulary, and `cached + ids.count +
    /// extra` positions fit the context (`extra`: room to keep for generated tokens).
    public func checkInput(_ ids: [Int], cached: Int = 0, extra: Int = 0, what: String = "the prompt") throws {
        guard !ids.isEmpty else { throw ModelInputError.empty(what: what) }
        if let bad = ids.first(where: { $0 < 0 || $0 >= config.vocabSize }) {
            throw ModelInputError.tokenOutOfRange(id: bad, vocabSize: config.vocabSize)
        }
        let (total, overflow) = cached.addingReportingOverflow(ids.count)
        let (withExtra, overflow2) = total.addingReportingOverflow(max(0, extra))
        guard !overflow, !overflow2, withExtra <= config.contextLength else {
            throw ModelInputError.contextOverflow(what: what, tokens: overflow || overflow2 ? Int.max : withExtra, context: config.contextLength)
        }
    }
}
