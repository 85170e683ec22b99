import CartridgeKernels
import CartridgeModel
@testable import CartridgeTraining
import XCTest

/// Every backward accumulates into its input gradients (docs/training.md): called on a buffer
/// that already holds a gradient, it adds its own. Checked per op by running each backward once
/// into zeroed buffers and once into pre-filled ones.
final class BackwardConventionTests: XCTestCase {
    /// `filled` must equal `prefill + fresh` (BLAS may round the sum differently: 1e-5 relative).
    private func assertAccumulated(_ filled: [Float], prefill: [Float], fresh: [Float], _ name: String) {
        XCTAssertEqual(filled.count, fresh.count)
        XCTAssertTrue(fresh.contains { $0 != 0 }, "\(name): the gradient is not all zero")
        for i in filled.indices {
            let want = prefill[i] + fresh[i]
            XCTAssertEqual(filled[i], want, accuracy: 1e-5 * max(1, abs(want)), "\(name)[\(i)] was overwritten, not accumulated")
        }
    }

    func testRMSNormBackwardAccumulatesIntoDx() {
        let rows = 3, dim = 8
        let x = GradientCheck.random(rows * dim, seed: 1), w = GradientCheck.random(dim, seed: 2), dout = GradientCheck.random(rows * dim, seed: 3)
        var out = [Float](repeating: 0, count: rows * dim), rstd = [Float](repeating: 0, count: rows)
        RMSNorm.forward(out: &out, rstd: &rstd, x: x, weight: w, rows: rows, dim: dim, eps: 1e-5)
        let prefill = GradientCheck.random(rows * dim, seed: 4)
        var fresh = [Float](repeating: 0, count: rows * dim), filled = prefill
        RMSNorm.backward(dx: &fresh, dout: dout, rstd: rstd, x: x, weight: w, rows: rows, dim: dim)
        RMSNorm.backward(dx: &filled, dout: dout, rstd: rstd, x: x, weight: w, rows: rows, dim: dim)
        assertAccumulated(filled, prefill: prefill, fresh: fresh, "RMSNorm dx")
    }

    func testHiddenStateDistanceBackwardAccumulatesIntoDh() {
        let rows = 3, dim = 8
        let h = GradientCheck.random(rows * dim, seed: 11), t = GradientCheck.random(rows * dim, seed: 12)
        let weights: [Float] = [1, 0, 0.5]
        let (_, scale) = HiddenStateDistance.forward(h: h, t: t, rowWeights: weights, dim: dim, weight: 0.3)
        let prefill = GradientCheck.random(rows * dim, seed: 13)
        var fresh = [Float](repeating: 0, count: rows * dim), filled = prefill
        HiddenStateDistance.backward(dh: &fresh, h: h, t: t, rowWeights: weights, dim: dim, scale: scale)
        HiddenStateDistance.backward(dh: &filled, h: h, t: t, rowWeights: weights, dim: dim, scale: scale)
        assertAccumulated(filled, prefill: prefill, fresh: fresh, "HiddenStateDistance dh")
        XCTAssertTrue(fresh[dim..<(2 * dim)].allSatisfy { $0 == 0 }, "an unsupervised row gets no gradient")
    }

    func testSwiGLUBackwardAccumulatesIntoDgateAndDup() {
        let n = 37  // the vector loop and the scalar tail
        let g = GradientCheck.random(n, seed: 5, scale: 3), u = GradientCheck.random(n, seed: 6), dout = GradientCheck.random(n, seed: 7)
        let pg = GradientCheck.random(n, seed: 8), pu = GradientCheck.random(n, seed: 9)
        var dg = [Float](repeating: 0, count: n), du = dg, fg = pg, fu = pu
        SwiGLU.backward(dgate: &dg, dup: &du, dout: dout, gate: g, up: u, count: n)
        SwiGLU.backward(dgate: &fg, dup: &fu, dout: dout, gate: g, up: u, count: n)
        assertAccumulated(fg, prefill: pg, fresh: dg, "SwiGLU dgate")
        assertAccumulated(fu, prefill: pu, fresh: du, "SwiGLU dup")
    }

    func testPrefixAttentionBackwardAccumulatesIntoDqDkeysAndDvalues() {
        let p = 3, n = 4, hd = 4, heads = 0..<2, stride = 2 * hd
        let q = GradientCheck.random(n * stride, seed: 10), k = GradientCheck.random((p + n) * hd, seed: 11)
        let v = GradientCheck.random((p + n) * hd, seed: 12), dout = GradientCheck.random(n * stride, seed: 13)
        func backward(_ dq: inout [Float], _ dk: inout [Float], _ dv: inout [Float]) {
            var scratch = [Float](repeating: 0, count: n * (p + n)), probs = scratch
            PrefixAttention.backward(dq: &dq, dkeys: &dk, dvalues: &dv, scratch: &scratch, probs: &probs, dout: dout, q: q, keys: k, values: v,
                                     n: n, prefix: p, heads: heads, headDim: hd, stride: stride)
        }
        let pq = GradientCheck.random(n * stride, seed: 14), pk = GradientCheck.random((p + n) * hd, seed: 15)
        let pv = GradientCheck.random((p + n) * hd, seed: 16)
        var dq = [Float](repeating: 0, count: n * stride), dk = [Float](repeating: 0, count: (p + n) * hd), dv = dk
        var fq = pq, fk = pk, fv = pv
        backward(&dq, &dk, &dv)
        backward(&fq, &fk, &fv)
        assertAccumulated(fq, prefill: pq, fresh: dq, "attention dq")
        assertAccumulated(fk, prefill: pk, fresh: dk, "attention dkeys")
        assertAccumulated(fv, prefill: pv, fresh: dv, "attention dvalues")
    }

    func testLinearBackwardAccumulatesIntoDx() {
        let rows = 5, outF = 6, inF = 7
        let linear = Linear(name: "w", weight: FloatBuffer(GradientCheck.random(outF * inF, seed: 17)), outFeatures: outF, inFeatures: inF)
        let dout = GradientCheck.random(rows * outF, seed: 18), prefill = GradientCheck.random(rows * inF, seed: 19)
        var fresh = [Float](repeating: 0, count: rows * inF), filled = prefill
        linear.backward(dx: &fresh, dout: dout, rows: rows)
        linear.backward(dx: &filled, dout: dout, rows: rows)
        assertAccumulated(filled, prefill: prefill, fresh: fresh, "Linear dx")
        // and it is the gradient of forward: d/dx sum(c * x W^T) = c W
        let x = GradientCheck.random(rows * inF, seed: 20)
        let err = GradientCheck.largestError("Linear", x: x, analytic: fresh) { x in
            var out = [Float](repeating: 0, count: rows * outF)
            linear.forward(out: &out, x: x, rows: rows)
            return GradientCheck.project(out, dout)
        }
        XCTAssertLessThan(err, 2e-3)
    }

    /// The in-place backwards (RoPE, softmax, the losses) have no separate input gradient: they
    /// turn the output gradient into the input gradient in the same buffer, whatever it held before.
    func testInPlaceBackwardsTransformTheirBuffer() {
        let heads = 1, hd = 4, table = RoPETable(positions: [5], headDim: hd, base: 10000)
        let dout = GradientCheck.random(hd, seed: 21)
        var once = dout
        RoPE.backward(&once, table: table, heads: heads, stride: hd)
        var twice = once
        RoPE.backward(&twice, table: table, heads: heads, stride: hd)
        var expected = dout  // twice in place is the inverse rotation applied twice, not a sum
        RoPE.backward(&expected, table: RoPETable(positions: [10], headDim: hd, base: 10000), heads: heads, stride: hd)
        for i in 0..<hd { XCTAssertEqual(twice[i], expected[i], accuracy: 1e-5) }
    }
}
