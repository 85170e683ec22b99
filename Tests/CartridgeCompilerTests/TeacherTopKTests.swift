@testable import CartridgeCompiler
import CartridgeKernels
import CartridgeModel
import Foundation
import XCTest

final class TeacherTopKTests: XCTestCase {
    func testKeepsTheMostLikelyIdsInOrderUntilTheMassIsReached() {
        // probabilities 0.5, 0.3, 0.15, 0.05 (as logits)
        let logits: [Float] = [log(0.15), log(0.5), log(0.05), log(0.3)]
        let all = TeacherTopK(logits: logits, count: 4, k: 20, mass: 0.99)
        XCTAssertEqual(all.ids, [1, 3, 0, 2])
        XCTAssertEqual(all.logProbs[0], log(0.5), accuracy: 1e-5)
        let cut = TeacherTopK(logits: logits, count: 4, k: 20, mass: 0.9)
        XCTAssertEqual(cut.ids, [1, 3, 0], "stops once 0.5 + 0.3 + 0.15 >= 0.9")
        let k2 = TeacherTopK(logits: logits, count: 4, k: 2, mass: 0.99)
        XCTAssertEqual(k2.ids, [1, 3])
    }

    func testLargeVocabularyTopKMatchesAFullSort() {
        var rng = SplitMix64(seed: 3)
        let n = 5000
        let logits = (0..<n).map { _ in Float(rng.nextUnit() * 20 - 10) }
        let t = TeacherTopK(logits: logits, count: n, k: 20, mass: 1.01)
        XCTAssertEqual(t.ids, Array(logits.indices.sorted { logits[$0] > logits[$1] }.prefix(20)))
        let lse = log(logits.reduce(0.0) { $0 + exp(Double($1)) })
        XCTAssertEqual(Double(t.logProbs[0]), Double(logits[t.ids[0]]) - lse, accuracy: 1e-4)
    }
}
