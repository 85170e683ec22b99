/// Causal attention of one sequence's queries over a prefix plus the sequence itself, for the
/// query heads that share one KV head (GQA). Keys are post-RoPE; query t (of n) attends to the
/// p prefix slots and to the sequence's keys 0...t, i.e. full-key slots 0..<p+t+1.
///
/// Shapes: q and out are (n, heads*hd) with row stride `stride`, the group's heads at columns
/// `firstHead*hd ...`; keys and values are (p+n, hd), prefix rows first; probability rows are
/// (n, p+n). Queries run in blocks of `block` rows, each block only over the keys its last row
/// can see, so the masked upper triangle is mostly not computed. The probabilities are not
/// kept: the backward pass recomputes them (one sgemm per block) to bound memory.
public enum PrefixAttention {
    static let block = 64

    /// out_h (n, hd) = softmax(scale * q_h K^T, causal) V, for each head of the group.
    public static func forward(out: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>,
                               q: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
                               n: Int, prefix p: Int, heads: Range<Int>, headDim hd: Int, stride: Int) {
        let width = p + n
        for h in heads {
            probabilities(probs: probs, q: q + h * hd, keys: keys, n: n, prefix: p, headDim: hd, stride: stride)
            for (t0, t1) in blocks(n) {
                // out_h[t0..<t1] (m, hd) = P[t0..<t1, 0..<p+t1] V[0..<p+t1]
                BLAS.gemm(m: t1 - t0, n: hd, k: p + t1, a: probs + t0 * width, lda: width, b: values, ldb: hd,
                          c: out + t0 * stride + h * hd, ldc: stride)
            }
        }
    }

    /// Accumulates dq (same layout as q), dkeys and dvalues ((p+n, hd), `+=`) given dout.
    /// Differentiates, per head: S = scale Q K^T, P = softmax(S), O = P V:
    /// dV += P^T dO; dP = dO V^T; dS = P * (dP - rowsum(dP * P)); dQ = scale dS K; dK += scale dS^T Q.
    public static func backward(dq: UnsafeMutablePointer<Float>, dkeys: UnsafeMutablePointer<Float>, dvalues: UnsafeMutablePointer<Float>,
                                scratch: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>,
                                dout: UnsafePointer<Float>, q: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
                                n: Int, prefix p: Int, heads: Range<Int>, headDim hd: Int, stride: Int) {
        let width = p + n, scale = 1 / Float(hd).squareRoot()
        for h in heads {
            probabilities(probs: probs, q: q + h * hd, keys: keys, n: n, prefix: p, headDim: hd, stride: stride)
            for (t0, t1) in blocks(n) {
                let m = t1 - t0, visible = p + t1
                let pb = probs + t0 * width, sb = scratch + t0 * width
                // dV[0..<visible] (visible, hd) += P_b^T (visible, m) dO_b (m, hd)
                BLAS.gemm(transA: true, m: visible, n: hd, k: m, a: pb, lda: width, b: dout + t0 * stride + h * hd, ldb: stride,
                          beta: 1, c: dvalues, ldc: hd)
                // dP_b (m, visible) = dO_b (m, hd) V^T (hd, visible)
                BLAS.gemm(transB: true, m: m, n: visible, k: hd, a: dout + t0 * stride + h * hd, lda: stride, b: values, ldb: hd,
                          c: sb, ldc: width)
                // dS = P * (dP - rowsum(dP * P)) over each row's visible keys (P is 0 beyond them)
                for t in t0..<t1 {
                    let valid = p + t + 1
                    Softmax.backward(scratch + t * width, y: probs + t * width, count: valid)
                    (scratch + t * width + valid).update(repeating: 0, count: visible - valid)
                }
                // dQ_b (m, hd) += scale dS_b (m, visible) K (visible, hd)
                BLAS.gemm(m: m, n: hd, k: visible, alpha: scale, a: sb, lda: width, b: keys, ldb: hd,
                          beta: 1, c: dq + t0 * stride + h * hd, ldc: stride)
                // dK[0..<visible] (visible, hd) += scale dS_b^T (visible, m) Q_b (m, hd)
                BLAS.gemm(transA: true, m: visible, n: hd, k: m, alpha: scale, a: sb, lda: width, b: q + t0 * stride + h * hd, ldb: stride,
                          beta: 1, c: dkeys, ldc: hd)
            }
        }
    }

    /// probs (n, p+n) = causal softmax(scale * q_h K^T); in each block only the visible columns are
    /// computed, the rest of the row is zero.
    static func probabilities(probs: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>, keys: UnsafePointer<Float>,
                              n: Int, prefix p: Int, headDim hd: Int, stride: Int) {
        let width = p + n
        for (t0, t1) in blocks(n) {
            BLAS.gemm(transB: true, m: t1 - t0, n: p + t1, k: hd, alpha: 1 / Float(hd).squareRoot(), a: q + t0 * stride, lda: stride,
                      b: keys, ldb: hd, c: probs + t0 * width, ldc: width)
            for t in t0..<t1 { Softmax.forward(probs + t * width, valid: p + t + 1, width: width) }
        }
    }

    /// Query blocks [t0, t1) of at most `block` rows.
    static func blocks(_ n: Int) -> [(Int, Int)] {
        stride(from: 0, to: n, by: block).map { ($0, Swift.min(n, $0 + block)) }
    }
}
