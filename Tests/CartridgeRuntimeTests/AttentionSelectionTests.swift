import CartridgeCorpus
import CartridgeKernels
import CartridgeModel
import CartridgeTestSupport
import Foundation
import XCTest

/// The attention-selected initialization: the right tokens' KV, keys moved on to their slots.
final class AttentionSelectionTests: XCTestCase {
    let text = "The harbour was quiet that year. The keeper of the lamp was Ada Brennan, who came from Galway in 1902. "
        + "She wrote every passing ship into a green logbook. Her brother Tomas repaired the lens each spring."

    func testRotatingAKeyOnByTheDistanceToItsSlotEqualsRotatingItForTheSlot() {
        // the identity the re-rotation rests on: R(slot - t) R(t) v = R(slot) v
        let hd = 64
        var rng = SplitMix64(seed: 7)
        let v = (0..<hd).map { _ in Float(rng.next() % 2000) / 1000 - 1 }
        for (t, slot) in [(900, 5), (37, 36), (4000, 127)] {
            var twice = v, once = v
            twice.withUnsafeMutableBufferPointer { p in
                RoPE.forward(p.baseAddress!, table: RoPETable(positions: [t], headDim: hd, base: 10000), heads: 1, stride: hd)
                RoPE.forward(p.baseAddress!, table: RoPETable(positions: [slot - t], headDim: hd, base: 10000), heads: 1, stride: hd)
            }
            once.withUnsafeMutableBufferPointer { RoPE.forward($0.baseAddress!, table: RoPETable(positions: [slot], headDim: hd, base: 10000), heads: 1, stride: hd) }
            for i in 0..<hd { XCTAssertEqual(twice[i], once[i], accuracy: 2e-3, "position \(t) to slot \(slot), dim \(i)") }
        }
    }

    func testKeepingEveryTokenGivesTheCorpusKVCacheUnchanged() throws {
        let lm = try TestResources.model()
        let segment = lm.tokenizer.encode("<|im_start|>system\n\(text)<|im_end|>\n", parseSpecial: true)
        let selected = AttentionSelection.kvTensors(model: lm.model, segments: [segment], size: 10_000)
        let plain = CartridgeBuilder.kvTensors(model: lm.model, ids: segment)
        XCTAssertEqual(selected.length, segment.count)
        XCTAssertEqual(selected.keys, plain.keys)
        XCTAssertEqual(selected.values, plain.values)
    }

    func testEachLayerKeepsTheSinkAndItsBestTokensInCorpusOrder() throws {
        let lm = try TestResources.model()
        let c = lm.config, hd = c.headDim
        let segment = lm.tokenizer.encode("<|im_start|>system\n\(text)<|im_end|>\n", parseSpecial: true)
        let p = 16
        let selected = AttentionSelection.kvTensors(model: lm.model, segments: [segment], size: p)
        let all = CartridgeBuilder.kvTensors(model: lm.model, ids: segment)
        let n = segment.count
        var kinds = Set<[Int]>()
        for l in 0..<c.layers {
            for h in 0..<c.kvHeads {
                // each slot's value is the value of a token after the previous slot's (equal
                // tokens have equal values in the first layers, so the match is taken in order):
                // the tokens rise with the slots, the first is the sink
                var positions: [Int] = []
                for slot in 0..<p {
                    let v = Array(selected.values[((l * c.kvHeads + h) * p + slot) * hd..<((l * c.kvHeads + h) * p + slot + 1) * hd])
                    let t = ((positions.last ?? -1) + 1..<n).first { t in
                        Array(all.values[((l * c.kvHeads + h) * n + t) * hd..<((l * c.kvHeads + h) * n + t + 1) * hd]) == v
                    }
                    XCTAssertNotNil(t, "layer \(l) head \(h) slot \(slot): no later token has its value")
                    positions.append(t ?? n)
                }
                XCTAssertEqual(positions.first, 0, "slot 0 is the sink")
                kinds.insert(positions)
            }
        }
        XCTAssertGreaterThan(kinds.count, 1, "layers and heads choose their own tokens")
        // the sink's key is untouched (slot 0, position 0)
        XCTAssertEqual(Array(selected.keys[0..<hd]), Array(all.keys[0..<hd]))
    }

    func testALongCorpusIsReadInSegmentsThatFitTheContext() throws {
        let lm = try TestResources.model()
        let body = String(repeating: "A ship passed the lamp. ", count: 40)
        let doc = Document(path: "long.txt", text: body, sha256: "", bytes: body.utf8.count)
        let segments = CartridgeBuilder.contextSegments(documents: [doc], tokenizer: lm.tokenizer, limit: 64)
        XCTAssertGreaterThan(segments.count, 1)
        XCTAssertTrue(segments.allSatisfy { $0.count <= 64 })
        let open = lm.tokenizer.encode("<|im_start|>system\n", parseSpecial: true)
        XCTAssertTrue(segments.allSatisfy { Array($0.prefix(open.count)) == open }, "each segment is its own system turn")
        let selected = AttentionSelection.kvTensors(model: lm.model, segments: segments, size: 32)
        XCTAssertEqual(selected.length, 32)
    }
}
