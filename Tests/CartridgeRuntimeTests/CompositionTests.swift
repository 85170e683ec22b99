import CartridgeCorpus
import CartridgeFormat
import CartridgeKernels
import CartridgeModel
@testable import CartridgeRuntime
import Foundation
import XCTest

final class CompositionTests: XCTestCase {
    /// An initialized cartridge is exactly the KV cache of its tokens, so a question read after it
    /// must give the logits of the same tokens read in one pass: this checks that keys are not
    /// rotated again and that query positions start at the prefix length.
    func testQuestionAfterAnInitCartridgeMatchesTheSameTokensInContext() throws {
        let rt = try RuntimeTestSupport.runtime()
        let lm = rt.model
        let docs = [Document(path: "a.txt", text: RuntimeTestSupport.documents[0].1, sha256: "", bytes: 0)]
        let ids = CartridgeBuilder.prefixIDs(documents: docs, tokenizer: lm.tokenizer, size: 24)
        let c = lm.config
        let (keys, values) = CartridgeBuilder.kvTensors(model: lm.model, ids: ids)
        let meta = CartridgeBuilder.metadata(name: "a", model: rt.model, identity: rt.identity, length: ids.count, frozen: 1, dtype: .f32, documents: docs,
                                             chunks: [], embeddingDimension: 384, recipe: [:], results: [:])
        let cart = LoadedCartridge(name: "a", metadata: meta, keys: FloatBuffer(keys), values: FloatBuffer(values))

        let question = StudentPrompt.ids(question: "What erupts every year?", tokenizer: lm.tokenizer)
        let composed = try rt.makeCache([cart], extraCapacity: question.count)
        XCTAssertEqual(composed.count, ids.count)
        let after = lm.model.forward(tokens: [question], caches: [composed])
        let inContext = lm.prefill(ids + question, cache: lm.model.makeCache(capacity: ids.count + question.count))
        var worst: Float = 0
        for i in 0..<c.vocabSize { worst = max(worst, abs(after[i] - inContext[i])) }
        XCTAssertLessThan(worst, 1e-3, "cartridge + question vs tokens in context: max logit difference \(worst)")
    }

    func testCompositionConcatenatesInOrderAndKeepsEachSink() throws {
        let rt = try RuntimeTestSupport.runtime()
        let lm = rt.model
        func cartridge(_ i: Int, size: Int) throws -> LoadedCartridge {
            let docs = [Document(path: "\(i).txt", text: RuntimeTestSupport.documents[i].1, sha256: "", bytes: 0)]
            let ids = CartridgeBuilder.prefixIDs(documents: docs, tokenizer: lm.tokenizer, size: size)
            let (keys, values) = CartridgeBuilder.kvTensors(model: lm.model, ids: ids)
            let meta = CartridgeBuilder.metadata(name: "\(i)", model: rt.model, identity: rt.identity, length: ids.count, frozen: 1, dtype: .f32, documents: docs,
                                                 chunks: [], embeddingDimension: 384, recipe: [:], results: [:])
            return LoadedCartridge(name: "\(i)", metadata: meta, keys: FloatBuffer(keys), values: FloatBuffer(values))
        }
        let a = try cartridge(0, size: 12), b = try cartridge(1, size: 9)
        let ab = try rt.makeCache([a, b], extraCapacity: 4)
        XCTAssertEqual(ab.count, 21)
        let hd = lm.config.headDim
        for l in [0, 17, 29] {
            for h in 0..<lm.config.kvHeads {
                // slot 0 holds a's sink, slot 12 b's sink, unchanged (no re-rotation)
                XCTAssertEqual(Array(UnsafeBufferPointer(start: ab.key(layer: l, head: h), count: hd)),
                               Array(UnsafeBufferPointer(start: a.keys.pointer + (l * lm.config.kvHeads + h) * 12 * hd, count: hd)))
                XCTAssertEqual(Array(UnsafeBufferPointer(start: ab.key(layer: l, head: h) + 12 * hd, count: 9 * hd)),
                               Array(UnsafeBufferPointer(start: b.keys.pointer + (l * lm.config.kvHeads + h) * 9 * hd, count: 9 * hd)))
            }
        }
        let q = StudentPrompt.ids(question: "Hi", tokenizer: lm.tokenizer)
        let logitsAB = lm.model.forward(tokens: [q], caches: [try rt.makeCache([a, b], extraCapacity: q.count)])
        let logitsAB2 = lm.model.forward(tokens: [q], caches: [try rt.makeCache([a, b], extraCapacity: q.count)])
        let logitsBA = lm.model.forward(tokens: [q], caches: [try rt.makeCache([b, a], extraCapacity: q.count)])
        XCTAssertEqual(logitsAB.array, logitsAB2.array, "composition must be deterministic")
        XCTAssertNotEqual(logitsAB.array, logitsBA.array, "order is part of the composition")
    }

    func testTooManySlotsIsAClearError() throws {
        let rt = try RuntimeTestSupport.runtime()
        XCTAssertThrowsError(try rt.makeCache([], extraCapacity: rt.model.config.contextLength + 1)) { e in
            XCTAssertTrue("\(e)".contains("context"), "\(e)")
        }
    }
}
