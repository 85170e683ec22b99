import CartridgeKernels
@testable import CartridgeModel
import CartridgeTestSupport
import XCTest

/// Sequences that continue a shared base cache compute what they would with a copy of it.
final class SharedBaseAttentionTests: XCTestCase {
    func testSequencesContinuingASharedBaseMatchSequencesHoldingACopyOfIt() throws {
        let lm = try TestResources.model()
        let tok = lm.tokenizer
        let context = tok.encode(String(repeating: "The lighthouse keeper wrote every passing ship into a green logbook, and her brother mended the lens. ", count: 12),
                                 parseSpecial: false)
        let base = lm.model.makeCache(capacity: context.count)
        _ = lm.prefill(context, cache: base)
        // prompts of several lengths: the prefill takes the product path, single rows the loops
        let prompts = ["Who kept the logbook?", "Colour?", "What did her brother repair each spring, and why did it matter to the ships?"]
            .map { tok.encode($0, parseSpecial: false) }
        let shared = prompts.map { lm.model.makeCache(capacity: $0.count + 4, continuing: base) }
        let copies = prompts.map { p -> KVCache in
            let c = lm.model.makeCache(capacity: context.count + p.count + 4)
            c.copyPrefix(from: base, count: base.count)
            return c
        }
        XCTAssertEqual(shared.map(\.position), copies.map(\.position))
        let v = lm.config.vocabSize
        func worst(_ a: FloatBuffer, _ b: FloatBuffer, rows: Int) -> Float {
            var w: Float = 0
            for i in 0..<(rows * v) { w = max(w, abs(a[i] - b[i])) }
            return w
        }
        let rows = prompts.reduce(0) { $0 + $1.count }
        let a = lm.model.forward(tokens: prompts, caches: shared, allLogits: true)
        let b = lm.model.forward(tokens: prompts, caches: copies, allLogits: true)
        XCTAssertLessThan(worst(a, b, rows: rows), 2e-3, "prompts after the shared base")
        for step in 0..<4 {
            let next = prompts.indices.map { [100 + 37 * $0 + step] }
            let x = lm.model.forward(tokens: next, caches: shared), y = lm.model.forward(tokens: next, caches: copies)
            XCTAssertLessThan(worst(x, y, rows: next.count), 2e-3, "decoding step \(step)")
        }
        XCTAssertEqual(base.count, context.count, "the base is read, never written")
    }

    func testGreedyAnswersOverASharedBaseEqualThoseOverACopy() throws {
        let lm = try TestResources.model()
        let system = lm.tokenizer.encode("<|im_start|>system\nThe keeper of the lamp was Ada Brennan, who came from Galway in 1902.<|im_end|>\n", parseSpecial: true)
        let base = lm.model.makeCache(capacity: system.count)
        _ = lm.prefill(system, cache: base)
        let prompts = ["Who kept the lamp?", "Where did the keeper come from?"].map { StudentPrompt.ids(question: $0, tokenizer: lm.tokenizer) }
        let shared = try lm.generateBatch(prompts: prompts, caches: prompts.map { lm.model.makeCache(capacity: $0.count + 16, continuing: base) },
                                          maxTokens: 16, sampling: [.greedy, .greedy])
        for (p, s) in zip(prompts, shared) {
            XCTAssertEqual(try lm.generate(promptIDs: system + p, maxTokens: 16).ids, s.ids)
        }
    }
}
