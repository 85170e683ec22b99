import CartridgeKernels
import CartridgeModel
import Foundation

/// Scores reference answers: the mean negative log-likelihood per answer token (nats) of the
/// answer's ids after a context, optionally behind cartridges.
public enum AnswerScorer {
    /// Mean over answer tokens of -log p(answer[i] | prefix, context, answer[..<i]).
    /// `cache` may hold a prefix (cartridges); it is extended and left holding the sequence.
    public static func meanNLL(model: LlamaModel, cache: KVCache? = nil, context: [Int], answer: [Int]) -> Double {
        invariant(!context.isEmpty && !answer.isEmpty)
        let tokens = context + answer
        let cache = cache ?? model.makeCache(capacity: tokens.count)
        invariant(cache.remaining >= tokens.count, "cache too small")
        let v = model.config.vocabSize
        let logits = model.forward(tokens: [tokens], caches: [cache], allLogits: true)
        var total = 0.0
        for (i, target) in answer.enumerated() {
            let row = logits.pointer + (context.count + i - 1) * v
            total += Double(Softmax.logSumExp(row, v) - row[target])
        }
        return total / Double(answer.count)
    }

    /// (none - with) / (none - icl): the fraction of the no-context-to-in-context gap that a
    /// condition closes (1: as good as the document in context; 0: no better than nothing).
    public static func gapClosed(none: Double, icl: Double, with value: Double) -> Double {
        (none - value) / (none - icl)
    }
}
