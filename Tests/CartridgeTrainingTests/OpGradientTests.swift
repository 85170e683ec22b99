import CartridgeKernels
import XCTest

/// Every op's backward against central finite differences of its forward.
final class OpGradientTests: XCTestCase {
    let tolerance = 2e-3

    func testRMSNormBackward() {
        let rows = 3, dim = 8
        let x = GradientCheck.random(rows * dim, seed: 1, scale: 1.5), w = GradientCheck.random(dim, seed: 2).map { $0 + 1 }
        let c = GradientCheck.random(rows * dim, seed: 3)
        func f(_ x: [Float]) -> Double {
            var out = [Float](repeating: 0, count: rows * dim)
            RMSNorm.forward(out: &out, rstd: nil, x: x, weight: w, rows: rows, dim: dim, eps: 1e-5)
            return GradientCheck.project(out, c)
        }
        var out = [Float](repeating: 0, count: rows * dim), rstd = [Float](repeating: 0, count: rows)
        RMSNorm.forward(out: &out, rstd: &rstd, x: x, weight: w, rows: rows, dim: dim, eps: 1e-5)
        var dx = [Float](repeating: 0, count: rows * dim)
        RMSNorm.backward(dx: &dx, dout: c, rstd: rstd, x: x, weight: w, rows: rows, dim: dim)
        XCTAssertLessThan(GradientCheck.largestError("RMSNorm", x: x, analytic: dx, loss: f), tolerance)
    }

    func testRoPEBackward() {
        let heads = 2, hd = 8, table = RoPETable(positions: [3, 17, 250], headDim: hd, base: 10000)
        let x = GradientCheck.random(3 * heads * hd, seed: 4), c = GradientCheck.random(3 * heads * hd, seed: 5)
        func f(_ x: [Float]) -> Double {
            var y = x
            RoPE.forward(&y, table: table, heads: heads, stride: heads * hd)
            return GradientCheck.project(y, c)
        }
        var dx = c
        RoPE.backward(&dx, table: table, heads: heads, stride: heads * hd)
        XCTAssertLessThan(GradientCheck.largestError("RoPE", x: x, analytic: dx, loss: f), tolerance)
    }

    func testSwiGLUBackward() {
        let n = 37
        let g = GradientCheck.random(n, seed: 6, scale: 3), u = GradientCheck.random(n, seed: 7, scale: 2), c = GradientCheck.random(n, seed: 8)
        func f(_ g: [Float], _ u: [Float]) -> Double {
            var out = [Float](repeating: 0, count: n)
            SwiGLU.forward(out: &out, gate: g, up: u, count: n)
            return GradientCheck.project(out, c)
        }
        var dg = [Float](repeating: 0, count: n), du = dg
        SwiGLU.backward(dgate: &dg, dup: &du, dout: c, gate: g, up: u, count: n)
        XCTAssertLessThan(GradientCheck.largestError("SwiGLU gate", x: g, analytic: dg) { f($0, u) }, tolerance)
        XCTAssertLessThan(GradientCheck.largestError("SwiGLU up", x: u, analytic: du) { f(g, $0) }, tolerance)
    }

    func testSoftmaxBackward() {
        let n = 11
        let x = GradientCheck.random(n, seed: 9, scale: 3), c = GradientCheck.random(n, seed: 10)
        func f(_ x: [Float]) -> Double {
            var y = x
            Softmax.forward(&y, valid: n, width: n)
            return GradientCheck.project(y, c)
        }
        var y = x
        Softmax.forward(&y, valid: n, width: n)
        var d = c
        Softmax.backward(&d, y: y, count: n)
        XCTAssertLessThan(GradientCheck.largestError("softmax", x: x, analytic: d, loss: f), tolerance)
    }

    /// Prefix of 3 slots, 4 queries, a KV head shared by 2 query heads of 4 dimensions, q rows
    /// strided inside a wider row (another group's heads beside them).
    func testPrefixAttentionBackward() {
        let p = 3, n = 4, hd = 4, heads = 0..<2, stride = 4 * hd
        let q = GradientCheck.random(n * stride, seed: 11), k = GradientCheck.random((p + n) * hd, seed: 12)
        let v = GradientCheck.random((p + n) * hd, seed: 13), c = GradientCheck.random(n * stride, seed: 14)
        let mask: [Float] = (0..<(n * stride)).map { ($0 % stride) < 2 * hd ? 1 : 0 }  // only the group's columns
        let cm = zip(c, mask).map { $0 * $1 }
        func f(_ q: [Float], _ k: [Float], _ v: [Float]) -> Double {
            var out = [Float](repeating: 0, count: n * stride), probs = [Float](repeating: 0, count: n * (p + n))
            PrefixAttention.forward(out: &out, probs: &probs, q: q, keys: k, values: v, n: n, prefix: p, heads: heads, headDim: hd, stride: stride)
            return GradientCheck.project(out, cm)
        }
        var dq = [Float](repeating: 0, count: n * stride), dk = [Float](repeating: 0, count: (p + n) * hd), dv = dk
        var scratch = [Float](repeating: 0, count: n * (p + n)), probs = scratch
        PrefixAttention.backward(dq: &dq, dkeys: &dk, dvalues: &dv, scratch: &scratch, probs: &probs, dout: cm, q: q, keys: k, values: v,
                                 n: n, prefix: p, heads: heads, headDim: hd, stride: stride)
        XCTAssertLessThan(GradientCheck.largestError("attention dq", x: q, analytic: dq) { f($0, k, v) }, tolerance)
        XCTAssertLessThan(GradientCheck.largestError("attention dkeys (prefix + sequence)", x: k, analytic: dk) { f(q, $0, v) }, tolerance)
        XCTAssertLessThan(GradientCheck.largestError("attention dvalues (prefix + sequence)", x: v, analytic: dv) { f(q, k, $0) }, tolerance)
    }

    func testCausalMaskHidesLaterTokens() {
        // changing the last token's key and value must not change the first query's output
        let p = 2, n = 3, hd = 4, stride = hd
        let q = GradientCheck.random(n * hd, seed: 15)
        var k = GradientCheck.random((p + n) * hd, seed: 16), v = GradientCheck.random((p + n) * hd, seed: 17)
        var out1 = [Float](repeating: 0, count: n * hd), out2 = out1, probs = [Float](repeating: 0, count: n * (p + n))
        PrefixAttention.forward(out: &out1, probs: &probs, q: q, keys: k, values: v, n: n, prefix: p, heads: 0..<1, headDim: hd, stride: stride)
        for i in ((p + n - 1) * hd)..<((p + n) * hd) { k[i] += 5; v[i] -= 3 }
        PrefixAttention.forward(out: &out2, probs: &probs, q: q, keys: k, values: v, n: n, prefix: p, heads: 0..<1, headDim: hd, stride: stride)
        XCTAssertEqual(Array(out1[0..<(2 * hd)]), Array(out2[0..<(2 * hd)]))
        XCTAssertNotEqual(Array(out1[(2 * hd)...]), Array(out2[(2 * hd)...]))
    }

    func testCrossEntropyGradient() {
        let rows = 3, vocab = 7
        let z = GradientCheck.random(rows * vocab, seed: 18, scale: 3)
        let targets = [2, 6, 0], weights: [Float] = [0.5, 0.2, 0.3]
        func f(_ z: [Float]) -> Double { var y = z; return Losses.crossEntropy(logits: &y, vocab: vocab, targets: targets, weights: weights) }
        var g = z
        _ = Losses.crossEntropy(logits: &g, vocab: vocab, targets: targets, weights: weights)
        XCTAssertLessThan(GradientCheck.largestError("cross-entropy", x: z, analytic: g, loss: f), tolerance)
    }

    func testDistillationGradientWithATruncatedTeacher() {
        let rows = 2, vocab = 9
        let z = GradientCheck.random(rows * vocab, seed: 19, scale: 3)
        // teacher top-k cut before the mass reaches 1
        let ids = [[4, 1, 7], [0, 8]], lps: [[Float]] = [[log(0.6), log(0.25), log(0.1)], [log(0.9), log(0.05)]], w: [Float] = [0.7, 0.3]
        func f(_ z: [Float]) -> Double { var y = z; return Losses.distillation(logits: &y, vocab: vocab, teacherIDs: ids, teacherLogProbs: lps, weights: w) }
        var g = z
        let loss = Losses.distillation(logits: &g, vocab: vocab, teacherIDs: ids, teacherLogProbs: lps, weights: w)
        XCTAssertGreaterThan(loss, 0)
        XCTAssertLessThan(GradientCheck.largestError("distillation", x: z, analytic: g, loss: f), tolerance)
    }
}
