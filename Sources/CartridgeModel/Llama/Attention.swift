import CartridgeKernels

/// Causal grouped-query attention of new queries against a KV cache (prefix slots included).
public enum Attention {
    /// out (n, heads*hd), scores scratch (n, past+n), q (n, heads*hd) post-RoPE.
    /// Query t (at cache slot past+t) attends to slots 0...past+t.
    public static func forward(out: UnsafeMutablePointer<Float>, scores: UnsafeMutablePointer<Float>,
                               q: UnsafePointer<Float>, cache: KVCache, layer: Int,
                               queries n: Int, past: Int, heads: Int, headDim hd: Int) {
        let keys = past + n, qStride = heads * hd, group = heads / cache.kvHeads
        let scale = 1 / Float(hd).squareRoot()
        for h in 0..<heads {
            let kvh = h / group
            // scores (n, keys) = scale * Q_h (n, hd) K^T (hd, keys)
            BLAS.gemm(transB: true, m: n, n: keys, k: hd, alpha: scale, a: q + h * hd, lda: qStride,
                      b: cache.key(layer: layer, head: kvh), ldb: hd, c: scores, ldc: keys)
            for t in 0..<n { Softmax.forward(scores + t * keys, valid: past + t + 1, width: keys) }
            // out_h (n, hd) = P (n, keys) V (keys, hd)
            BLAS.gemm(m: n, n: hd, k: keys, a: scores, lda: keys, b: cache.value(layer: layer, head: kvh), ldb: hd,
                      c: out + h * hd, ldc: qStride)
        }
    }
}
