import CartridgeKernels
import XCTest

final class OpsTests: XCTestCase {
    func testRMSNormGivesUnitRootMeanSquare() {
        let x: [Float] = [1, -2, 3, -4, 0.5, 6]
        let w = [Float](repeating: 1, count: 6)
        var out = [Float](repeating: 0, count: 6)
        RMSNorm.forward(out: &out, rstd: nil, x: x, weight: w, rows: 1, dim: 6, eps: 0)
        let rms = (out.map { $0 * $0 }.reduce(0, +) / 6).squareRoot()
        XCTAssertEqual(rms, 1, accuracy: 1e-6)
    }

    func testRoPEAtPositionZeroIsIdentityAndPreservesNorms() {
        var x: [Float] = (0..<16).map { Float($0) * 0.37 - 2 }
        let original = x
        RoPE.forward(&x, table: RoPETable(positions: [0], headDim: 8, base: 10000), heads: 2, stride: 16)
        XCTAssertEqual(x, original)
        RoPE.forward(&x, table: RoPETable(positions: [123], headDim: 8, base: 10000), heads: 2, stride: 16)
        for pair in 0..<8 {
            let a = original[2 * pair], b = original[2 * pair + 1]
            XCTAssertEqual((a * a + b * b).squareRoot(), (x[2 * pair] * x[2 * pair] + x[2 * pair + 1] * x[2 * pair + 1]).squareRoot(), accuracy: 1e-5)
        }
    }

    func testSoftmaxSumsToOneAndZeroesMaskedEntries() {
        var row: [Float] = [1000, 999, 998, 5, 7]
        Softmax.forward(&row, valid: 3, width: 5)
        XCTAssertEqual(row[0] + row[1] + row[2], 1, accuracy: 1e-6)
        XCTAssertEqual(row[3], 0)
        XCTAssertEqual(row[4], 0)
        XCTAssertGreaterThan(row[0], row[1])
    }
}
