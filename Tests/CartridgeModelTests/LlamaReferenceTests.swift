import CartridgeKernels
@testable import CartridgeModel
import CartridgeTestSupport
import XCTest

/// The forward pass against logits and greedy answers computed by another implementation
/// (HF transformers, float32, same dequantized weights). Tolerances: Tests/Reference/README.md.
final class LlamaReferenceTests: XCTestCase {
    func testLastRowLogitsMatchReference() throws {
        let lm = try TestResources.model()
        let ref = try TestResources.reference("logits.json")
        let sampleIDs = ref["sample_ids"] as! [Int]
        for prompt in ref["prompts"] as! [[String: Any]] {
            let name = prompt["name"] as! String
            let ids = prompt["ids"] as! [Int]
            let last = prompt["last"] as! [String: Any]
            let logits = lm.prefill(ids, cache: lm.model.makeCache(capacity: ids.count))
            let row = Array(UnsafeBufferPointer(start: logits.pointer, count: lm.config.vocabSize))

            var worst: Float = 0
            let top = (last["top20"] as! [[Double]]).map { (Int($0[0]), Float($0[1])) }
            for (id, value) in top { worst = max(worst, abs(row[id] - value)) }
            for (id, value) in zip(sampleIDs, (last["logits_at_sample_ids"] as! [Double]).map(Float.init)) {
                worst = max(worst, abs(row[id] - value))
            }
            print("\(name): max |logit - reference| = \(worst)")
            XCTAssertLessThan(worst, 1e-3, name)
            XCTAssertEqual(Vector.argmax(logits.pointer, row.count), last["argmax"] as! Int, name)
            assertSameRanking(row, reference: top, name: name)

            let mean = row.reduce(0.0) { $0 + Double($1) } / Double(row.count)
            let std = (row.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(row.count)).squareRoot()
            XCTAssertEqual(mean, last["mean"] as! Double, accuracy: 1e-4, name)
            XCTAssertEqual(std, last["std"] as! Double, accuracy: 1e-4, name)
        }
    }

    func testEarlierRowsMatchReferenceTop5() throws {
        let lm = try TestResources.model()
        let ref = try TestResources.reference("logits.json")
        for prompt in ref["prompts"] as! [[String: Any]] {
            let ids = prompt["ids"] as! [Int]
            let all = lm.model.forward(tokens: [ids], caches: [lm.model.makeCache(capacity: ids.count)], allLogits: true)
            let v = lm.config.vocabSize
            for pos in prompt["positions"] as! [[String: Any]] {
                let t = pos["position"] as! Int
                let row = Array(UnsafeBufferPointer(start: all.pointer + t * v, count: v))
                let top = (pos["top5"] as! [[Double]]).map { (Int($0[0]), Float($0[1])) }
                var worst: Float = 0
                for (id, value) in top { worst = max(worst, abs(row[id] - value)) }
                XCTAssertLessThan(worst, 1e-3, "\(prompt["name"]!) row \(t)")
                assertSameRanking(row, reference: top, name: "\(prompt["name"]!) row \(t)")
            }
        }
    }

    func testGreedyAnswersMatchReference() throws {
        let lm = try TestResources.model()
        let ref = try TestResources.reference("greedy.json")
        for c in ref["cases"] as! [[String: Any]] {
            let question = c["question"] as! String
            let promptIDs = lm.chatIDs([ChatMessage(.user, question)])
            XCTAssertEqual(promptIDs, c["prompt_ids"] as! [Int], "chat template and tokenizer for \(question)")
            let out = try lm.generate(promptIDs: promptIDs, maxTokens: ref["max_new_tokens"] as! Int)
            XCTAssertEqual(out.ids, c["output_ids"] as! [Int], question)
        }
    }

    /// The reference's top ids, in order, except that ids whose logits differ by less than the
    /// tolerance may swap.
    private func assertSameRanking(_ row: [Float], reference: [(Int, Float)], name: String) {
        let ours = row.indices.sorted { row[$0] > row[$1] }.prefix(reference.count)
        for (i, id) in ours.enumerated() where id != reference[i].0 {
            XCTAssertLessThan(abs(reference[i].1 - row[id]), 1e-3, "\(name): rank \(i) is \(id), reference \(reference[i].0)")
        }
    }
}
