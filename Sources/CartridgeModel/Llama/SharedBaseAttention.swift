import CartridgeKernels

/// Attention for sequences that continue one shared base cache (`KVCache.base`), in two parts.
///
/// 1. `attend`: the queries of every sequence on the base, against the base's slots, together:
///    per KV head one product (queries × heads of the group, hd) × (hd, base slots), so the base
///    is read once per step instead of once per sequence. Each query row keeps its unnormalized
///    result: m = max score, l = sum of exp(score - m), o = sum of exp(score - m) v.
/// 2. `finish`: each sequence's queries against its own slots (causal), merged with its base part:
///    with M = max(m, m'), out = (e^(m-M) o + e^(m'-M) o') / (e^(m-M) l + e^(m'-M) l').
///
/// The result equals softmax attention over base + own slots (as `Attention.forward` over a
/// cache holding a copy of the base) up to float rounding.
public enum SharedBaseAttention {
    /// Each query row's base part, by (row, head): o (rows, heads, hd), m and l (rows, heads).
    public final class Partials: @unchecked Sendable {
        let heads: Int, headDim: Int
        let out: FloatBuffer, max: FloatBuffer, sum: FloatBuffer

        public init(rows: Int, heads: Int, headDim: Int) {
            self.heads = heads
            self.headDim = headDim
            out = FloatBuffer(count: rows * heads * headDim)
            max = FloatBuffer(count: rows * heads)
            sum = FloatBuffer(count: rows * heads)
        }
    }

    /// Query rows per product, bounding the scores scratch at (chunk, base slots).
    static let chunkRows = 512

    /// Part 1 for the query rows `rows` of q (R, heads*hd) post-RoPE, all on `base`.
    public static func attend(q: UnsafePointer<Float>, rows: [Int], base: KVCache, layer: Int, heads: Int, headDim hd: Int,
                              into parts: Partials) {
        let slots = base.count, group = heads / base.kvHeads, qStride = heads * hd
        let scale = 1 / Float(hd).squareRoot()
        guard slots > 0 else {
            for r in rows { for h in 0..<heads { parts.max.pointer[r * heads + h] = -.infinity; parts.sum.pointer[r * heads + h] = 0 } }
            return
        }
        // one row of the product per (query row, head of the group)
        let pairs = rows.flatMap { r in (0..<group).map { (r, $0) } }
        let chunk = min(chunkRows, pairs.count)
        let gathered = FloatBuffer(count: chunk * hd)   // (chunk, hd) queries
        let scores = FloatBuffer(count: chunk * slots)  // (chunk, slots)
        let result = FloatBuffer(count: chunk * hd)     // (chunk, hd)
        for kv in 0..<base.kvHeads {
            let keys = base.key(layer: layer, head: kv), values = base.value(layer: layer, head: kv)
            for first in stride(from: 0, to: pairs.count, by: chunk) {
                let n = min(chunk, pairs.count - first)
                for i in 0..<n {
                    let (r, j) = pairs[first + i]
                    (gathered.pointer + i * hd).update(from: q + r * qStride + (kv * group + j) * hd, count: hd)
                }
                // scores (n, slots) = scale * Q (n, hd) K^T (hd, slots)
                BLAS.gemm(transB: true, m: n, n: slots, k: hd, alpha: scale, a: gathered.pointer, lda: hd,
                          b: keys, ldb: hd, c: scores.pointer, ldc: slots)
                for i in 0..<n {
                    let (r, j) = pairs[first + i], at = r * heads + kv * group + j, row = scores.pointer + i * slots
                    let m = Vector.max(row, slots)
                    parts.max.pointer[at] = m
                    parts.sum.pointer[at] = FastMath.expShiftedSum(row, slots, shift: m)
                }
                // o (n, hd) = exp(scores - m) (n, slots) V (slots, hd)
                BLAS.gemm(m: n, n: hd, k: slots, a: scores.pointer, lda: slots, b: values, ldb: hd, c: result.pointer, ldc: hd)
                for i in 0..<n {
                    let (r, j) = pairs[first + i]
                    (parts.out.pointer + (r * heads + kv * group + j) * hd).update(from: result.pointer + i * hd, count: hd)
                }
            }
        }
    }

    /// Part 2 for one sequence: out (n, heads*hd), q (n, heads*hd); its query t (own slot past+t)
    /// attends to its own slots 0...past+t and, through `partials` (rows firstRow..<firstRow+n),
    /// to the base.
    public static func finish(out: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>, cache: KVCache, layer: Int,
                              queries n: Int, past: Int, heads: Int, headDim hd: Int, partials parts: Partials, firstRow: Int) {
        let qStride = heads * hd, group = heads / cache.kvHeads
        let scale = 1 / Float(hd).squareRoot()
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: past + n)
        defer { scores.deallocate() }
        for h in 0..<heads {
            let kh = cache.key(layer: layer, head: h / group), vh = cache.value(layer: layer, head: h / group)
            for t in 0..<n {
                let qt = q + t * qStride + h * hd, ot = out + t * qStride + h * hd
                let at = (firstRow + t) * heads + h
                let valid = past + t + 1
                for j in 0..<valid { scores[j] = scale * Vector.dot(qt, kh + j * hd, hd) }
                let mOwn = Vector.max(scores, valid), mBase = parts.max.pointer[at]
                let m = Swift.max(mOwn, mBase)
                let lOwn = FastMath.expShiftedSum(scores, valid, shift: m)
                let carry = mBase == -.infinity ? 0 : FastMath.exp(mBase - m)
                // out = (carry * o_base + sum_j e_j v_j) / (carry * l_base + l_own)
                (ot).update(from: parts.out.pointer + at * hd, count: hd)
                Vector.scale(ot, by: carry, hd)
                for j in 0..<valid { Vector.axpy(scores[j], vh + j * hd, ot, hd) }
                Vector.scale(ot, by: 1 / (carry * parts.sum.pointer[at] + lOwn), hd)
            }
        }
    }
}
