import CartridgeEvaluation
import CartridgeKernels
import CartridgeModel
import Foundation
import XCTest

/// The evaluation arithmetic on a tiny model: mean answer NLL against a direct computation, with
/// and without a prefix in the cache, and the gap-closed formula.
final class AnswerScorerTests: XCTestCase {
    func testMeanNLLIsTheAverageNegativeLogProbabilityOfTheAnswerTokens() {
        let model = TinyLlama.make(seed: 11)
        let context = [3, 9, 14], answer = [22, 5, 31]
        let nll = AnswerScorer.meanNLL(model: model, context: context, answer: answer)
        // direct: one token at a time through a KV cache
        let cache = model.makeCache(capacity: 6)
        var logits = model.forward(tokens: [context], caches: [cache])
        var total = 0.0
        for t in answer {
            var m = -Double.infinity
            for i in 0..<model.config.vocabSize { m = max(m, Double(logits[i])) }
            var s = 0.0
            for i in 0..<model.config.vocabSize { s += exp(Double(logits[i]) - m) }
            total += m + log(s) - Double(logits[t])
            logits = model.forward(tokens: [[t]], caches: [cache])
        }
        XCTAssertEqual(nll, total / 3, accuracy: 1e-5)
    }

    func testAPrefixInTheCacheConditionsTheScore() {
        let model = TinyLlama.make(seed: 12)
        let prefixCache = model.makeCache(capacity: 10)
        _ = model.forward(tokens: [[1, 2, 3, 4]], caches: [prefixCache])
        let with = AnswerScorer.meanNLL(model: model, cache: prefixCache, context: [7, 8], answer: [9, 10])
        let inline = AnswerScorer.meanNLL(model: model, context: [1, 2, 3, 4, 7, 8], answer: [9, 10])
        XCTAssertEqual(with, inline, accuracy: 1e-5)
        XCTAssertNotEqual(with, AnswerScorer.meanNLL(model: model, context: [7, 8], answer: [9, 10]), accuracy: 1e-6)
    }

    func testGapClosed() {
        XCTAssertEqual(AnswerScorer.gapClosed(none: 4.58, icl: 2.27, with: 2.27), 1, accuracy: 1e-12)
        XCTAssertEqual(AnswerScorer.gapClosed(none: 4.58, icl: 2.27, with: 4.58), 0, accuracy: 1e-12)
        XCTAssertEqual(AnswerScorer.gapClosed(none: 4.0, icl: 2.0, with: 3.0), 0.5, accuracy: 1e-12)
        XCTAssertLessThan(AnswerScorer.gapClosed(none: 4.0, icl: 2.0, with: 5.0), 0, "worse than no context is negative")
    }
}
