import CartridgeKernels

/// Causal grouped-query attention of new queries against a KV cache (prefix slots included).
public enum Attention {
    /// Below this many queries the products run as plain loops (BLAS call overhead dominates).
    static let smallQueries = 4

    /// out (n, heads*hd), scores scratch (n, past+n), q (n, heads*hd) post-RoPE.
    /// Query t (at cache slot past+t) attends to slots 0...past+t.
    public static func forward(out: UnsafeMutablePointer<Float>, scores: UnsafeMutablePointer<Float>,
                               q: UnsafePointer<Float>, cache: KVCache, layer: Int,
                               queries n: Int, past: Int, heads: Int, headDim hd: Int) {
        let keys = past + n, qStride = heads * hd, group = heads / cache.kvHeads
        let scale = 1 / Float(hd).squareRoot()
        for h in 0..<heads {
            let kh = cache.key(layer: layer, head: h / group), vh = cache.value(layer: layer, head: h / group)
            if n <= smallQueries {
                for t in 0..<n {
                    let qt = q + t * qStride + h * hd, st = scores + t * keys, ot = out + t * qStride + h * hd
                    let valid = past + t + 1
                    for j in 0..<valid { st[j] = scale * Vector.dot(qt, kh + j * hd, hd) }
                    Softmax.forward(st, valid: valid, width: valid)
                    ot.update(repeating: 0, count: hd)
                    for j in 0..<valid { Vector.axpy(st[j], vh + j * hd, ot, hd) }
                }
                continue
            }
            // scores (n, keys) = scale * Q_h (n, hd) K^T (hd, keys)
            BLAS.gemm(transB: true, m: n, n: keys, k: hd, alpha: scale, a: q + h * hd, lda: qStride,
                      b: kh, ldb: hd, c: scores, ldc: keys)
            for t in 0..<n { Softmax.forward(scores + t * keys, valid: past + t + 1, width: keys) }
            // out_h (n, hd) = P (n, keys) V (keys, hd)
            BLAS.gemm(m: n, n: hd, k: keys, a: scores, lda: keys, b: vh, ldb: hd, c: out + h * hd, ldc: qStride)
        }
    }
}
