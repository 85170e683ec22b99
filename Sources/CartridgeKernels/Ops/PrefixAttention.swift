/// Causal attention of one sequence's queries over a prefix plus the sequence itself, for the
/// query heads that share one KV head (GQA). Keys are post-RoPE; query t (of n) attends to the
/// p prefix slots and to the sequence's keys 0...t, i.e. full-key slots 0..<p+t+1.
///
/// Shapes: q and out are (n, heads*hd) with row stride `stride`, the group's heads at columns
/// `firstHead*hd ...`; keys and values are (p+n, hd), prefix rows first. The probabilities are
/// not stored: the backward pass recomputes them (two small sgemm per head) to bound memory.
public enum PrefixAttention {
    /// out_h (n, hd) = softmax(scale * q_h K^T, causal) V, for each head of the group.
    public static func forward(out: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>,
                               q: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
                               n: Int, prefix p: Int, heads: Range<Int>, headDim hd: Int, stride: Int) {
        for h in heads {
            probabilities(probs: probs, q: q + h * hd, keys: keys, n: n, prefix: p, headDim: hd, stride: stride)
            // out_h (n, hd) = P (n, p+n) V (p+n, hd)
            BLAS.gemm(m: n, n: hd, k: p + n, a: probs, lda: p + n, b: values, ldb: hd, c: out + h * hd, ldc: stride)
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
            // dV (p+n, hd) += P^T (p+n, n) dO (n, hd)
            BLAS.gemm(transA: true, m: width, n: hd, k: n, a: probs, lda: width, b: dout + h * hd, ldb: stride,
                      beta: 1, c: dvalues, ldc: hd)
            // dP (n, p+n) = dO (n, hd) V^T (hd, p+n)
            BLAS.gemm(transB: true, m: n, n: width, k: hd, a: dout + h * hd, lda: stride, b: values, ldb: hd,
                      c: scratch, ldc: width)
            // dS = P * (dP - rowsum(dP * P)), over each row's visible keys (P is 0 beyond them)
            for t in 0..<n {
                let valid = p + t + 1
                Softmax.backward(scratch + t * width, y: probs + t * width, count: valid)
                (scratch + t * width + valid).update(repeating: 0, count: width - valid)
            }
            // dQ_h (n, hd) = scale dS (n, p+n) K (p+n, hd)
            BLAS.gemm(m: n, n: hd, k: width, alpha: scale, a: scratch, lda: width, b: keys, ldb: hd,
                      beta: 1, c: dq + h * hd, ldc: stride)
            // dK (p+n, hd) += scale dS^T (p+n, n) Q_h (n, hd)
            BLAS.gemm(transA: true, m: width, n: hd, k: n, alpha: scale, a: scratch, lda: width, b: q + h * hd, ldb: stride,
                      beta: 1, c: dkeys, ldc: hd)
        }
    }

    /// probs (n, p+n) = causal softmax(scale * q_h K^T)
    static func probabilities(probs: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>, keys: UnsafePointer<Float>,
                              n: Int, prefix p: Int, headDim hd: Int, stride: Int) {
        let width = p + n
        BLAS.gemm(transB: true, m: n, n: width, k: hd, alpha: 1 / Float(hd).squareRoot(), a: q, lda: stride,
                  b: keys, ldb: hd, c: probs, ldc: width)
        for t in 0..<n { Softmax.forward(probs + t * width, valid: p + t + 1, width: width) }
    }
}
