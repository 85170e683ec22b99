import CartridgeKernels
@testable import CartridgeModel
import CartridgeTestSupport
import XCTest

/// Properties of the forward pass that must hold whatever the weights.
final class ForwardConsistencyTests: XCTestCase {
    func testIncrementalDecodingMatchesFullRecompute() throws {
        let lm = try TestResources.model()
        let ids = lm.tokenizer.encode("The quick brown fox jumps over the lazy dog because it wanted to see", parseSpecial: false)
        let full = lm.prefill(ids, cache: lm.model.makeCache(capacity: ids.count))
        let cache = lm.model.makeCache(capacity: ids.count)
        _ = lm.prefill(Array(ids.prefix(5)), cache: cache)
        var last: FloatBuffer! = nil
        for id in ids.dropFirst(5) { last = lm.model.forward(tokens: [[id]], caches: [cache]) }
        var worst: Float = 0
        for i in 0..<lm.config.vocabSize { worst = max(worst, abs(full[i] - last[i])) }
        XCTAssertLessThan(worst, 1e-3, "KV-cache decoding vs one-shot prefill")
    }

    func testBatchedSequencesMatchSeparateRuns() throws {
        let lm = try TestResources.model()
        let a = lm.tokenizer.encode("Paris is the capital of", parseSpecial: false)
        let b = lm.tokenizer.encode("def fibonacci(n):\n    return", parseSpecial: false)
        let batched = lm.model.forward(tokens: [a, b], caches: [lm.model.makeCache(capacity: 64), lm.model.makeCache(capacity: 64)])
        let v = lm.config.vocabSize
        for (s, ids) in [a, b].enumerated() {
            let alone = lm.prefill(ids, cache: lm.model.makeCache(capacity: 64))
            var worst: Float = 0
            for i in 0..<v { worst = max(worst, abs(alone[i] - batched[s * v + i])) }
            XCTAssertLessThan(worst, 1e-3, "sequence \(s)")
        }
    }

    func testABatchedDecodingStepGivesEachSequenceTheBitsItGetsAlone() throws {
        // the server's promise: a request answers the same whoever shares its decoding steps
        let lm = try TestResources.model()
        let prompts = (0..<11).map { lm.tokenizer.encode("Sequence \($0) of the batch talks about topic number \($0 * 7).", parseSpecial: false) }
        let caches = prompts.map { p in lm.model.makeCache(capacity: p.count + 1) }
        for (p, c) in zip(prompts, caches) { _ = lm.prefill(p, cache: c) }
        let next = prompts.indices.map { [($0 * 97) % 1000 + 10] }
        let alone = zip(next, caches).map { t, c in
            defer { c.truncate(to: c.count - 1) }
            let logits = lm.model.forward(tokens: [t], caches: [c])
            return withExtendedLifetime(logits) { Array(UnsafeBufferPointer(start: logits.pointer, count: lm.config.vocabSize)) }
        }
        let batched = lm.model.forward(tokens: next, caches: caches)  // 11 rows: two four-row passes and three single rows
        for s in prompts.indices {
            XCTAssertTrue(alone[s].elementsEqual(UnsafeBufferPointer(start: batched.pointer + s * lm.config.vocabSize, count: lm.config.vocabSize)),
                          "sequence \(s) differs when decoded in a batch of \(prompts.count)")
        }
    }

    func testBatchGenerationMatchesSingleGeneration() throws {
        let lm = try TestResources.model()
        let prompts = ["What is 2+2?", "Name a color."].map { lm.chatIDs([ChatMessage(.user, $0)]) }
        let batch = try lm.generateBatch(prompts: prompts, maxTokens: 12, sampling: [.greedy, .greedy])
        for (p, b) in zip(prompts, batch) {
            XCTAssertEqual(try lm.generate(promptIDs: p, maxTokens: 12).ids, b.ids)
        }
    }

    func testBatchGenerationEndsASequenceWhenToldAndLeavesTheOthersAlone() throws {
        let lm = try TestResources.model()
        let prompts = ["What is 2+2?", "Name a color."].map { lm.chatIDs([ChatMessage(.user, $0)]) }
        let full = try lm.generateBatch(prompts: prompts, maxTokens: 12, sampling: [.greedy, .greedy])
        let cut = try lm.generateBatch(prompts: prompts, maxTokens: 12, sampling: [.greedy, .greedy],
                                       finished: { s, ids in s == 0 && ids.count == 3 })
        XCTAssertEqual(cut[0].ids, Array(full[0].ids.prefix(3)))
        XCTAssertFalse(cut[0].stopped)
        XCTAssertEqual(cut[1].ids, full[1].ids)
    }

    func testSeededSamplingIsReproducibleAndVaries() throws {
        let lm = try TestResources.model()
        let p = lm.chatIDs([ChatMessage(.user, "Write one sentence about the sea.")])
        let params = SamplingParameters(temperature: 1.0, topK: 50, topP: 0.95, seed: 7)
        let first = try lm.generate(promptIDs: p, maxTokens: 16, sampling: params)
        XCTAssertEqual(first.ids, try lm.generate(promptIDs: p, maxTokens: 16, sampling: params).ids)
        var other = params
        other.seed = 8
        let outputs = try (8..<12).map { s -> [Int] in other.seed = UInt64(s); return try lm.generate(promptIDs: p, maxTokens: 16, sampling: other).ids }
        XCTAssertTrue(outputs.contains { $0 != first.ids }, "different seeds never changed the sample")
    }

    func testContextOverflowIsAnErrorNotACrash() throws {
        let lm = try TestResources.model()
        let cache = lm.model.makeCache(capacity: 8)
        XCTAssertThrowsError(try lm.generate(promptIDs: [1, 2, 3, 4, 5], cache: cache, maxTokens: 10))
    }
}
