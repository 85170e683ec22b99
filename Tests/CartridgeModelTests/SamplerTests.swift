@testable import CartridgeModel
import XCTest

final class SamplerTests: XCTestCase {
    func testGreedyPicksTheLargestLogit() {
        var s = Sampler(.greedy)
        let logits: [Float] = [0.1, 3, -2, 2.9]
        XCTAssertEqual(s.sample(logits, count: 4), 1)
    }

    func testTopKOneIsGreedyAtAnyTemperature() {
        var s = Sampler(SamplingParameters(temperature: 5, topK: 1, seed: 3))
        let logits: [Float] = [0.1, 3, -2, 2.9]
        for _ in 0..<50 { XCTAssertEqual(s.sample(logits, count: 4), 1) }
    }

    func testTopPExcludesTheTail() {
        // probabilities about 0.66, 0.24, 0.09, 0.0001: top-p 0.8 keeps two tokens
        let logits: [Float] = [2, 1, 0, -9]
        var s = Sampler(SamplingParameters(temperature: 1, topP: 0.8, seed: 1))
        var seen = Set<Int>()
        for _ in 0..<500 { seen.insert(s.sample(logits, count: 4)) }
        XCTAssertEqual(seen, [0, 1])
    }

    func testTemperatureSamplingFollowsTheDistribution() {
        let logits: [Float] = [log(0.5), log(0.3), log(0.2)]
        var s = Sampler(SamplingParameters(temperature: 1, seed: 42))
        var counts = [0, 0, 0]
        let n = 20000
        for _ in 0..<n { counts[s.sample(logits, count: 3)] += 1 }
        XCTAssertEqual(Double(counts[0]) / Double(n), 0.5, accuracy: 0.02)
        XCTAssertEqual(Double(counts[1]) / Double(n), 0.3, accuracy: 0.02)
        XCTAssertEqual(Double(counts[2]) / Double(n), 0.2, accuracy: 0.02)
    }
}
