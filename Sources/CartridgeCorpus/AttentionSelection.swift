import CartridgeKernels
import CartridgeModel
import Foundation

/// Which corpus tokens an untrained cartridge holds the KV of.
public enum InitSelection: String, Codable, Sendable, CaseIterable {
    /// The corpus' first p tokens (the paper's initialization): the opening, as text.
    case first
    /// For each layer and KV head, the p - 1 tokens of the whole corpus that receive the most
    /// attention while the model reads it (`AttentionSelection`), after the attention sink.
    case attention
}

/// An initialization from the whole corpus, as KV-cache eviction methods (H2O, SnapKV) keep the
/// tokens that attention uses most.
///
/// The model reads the corpus as the evaluation's in-context condition does (one system turn;
/// a corpus longer than the context is read in consecutive segments, each its own system turn).
/// A token's score in a layer and KV head is the mean attention it receives from the queries
/// that see it (summed over the group's query heads), max-pooled over its neighbours (±`radius`)
/// so that kept tokens come with their context. Per layer and KV head, slot 0 keeps the first
/// token (the attention sink) and slots 1..<p the p - 1 best-scoring other tokens in corpus
/// order (or the first k tokens and the p - k best others); a kept token's key, rotated for its corpus position, is rotated on to its slot's
/// (RoPE rotations compose: R(slot) = R(slot - position) R(position)); values are kept as they are.
public enum AttentionSelection {
    /// Neighbours on each side that share a token's score.
    public static let radius = 3

    /// Keys and values, each (layers, kvHeads, p, headDim), p = min(size, corpus tokens): the
    /// attention-selected initialization for a corpus read as `segments` (each the token ids of
    /// one system turn, at most the model's context). The first `keepFirst` tokens (at least the
    /// sink) are kept in every layer, as the `first` initialization keeps them.
    public static func kvTensors(model: LlamaModel, segments: [[Int]], size: Int, keepFirst: Int = 1) -> (keys: [Float], values: [Float], length: Int) {
        let c = model.config, hd = c.headDim
        let total = segments.reduce(0) { $0 + $1.count }
        invariant(!segments.isEmpty && segments.allSatisfy { !$0.isEmpty && $0.count <= c.contextLength } && size >= 2)
        let p = min(size, total), first = min(max(1, keepFirst), p, segments[0].count)
        // every token of every segment: its cache, segment and position
        var caches: [KVCache] = [], scores: [[Float]] = []  // scores (layers * kvHeads, tokens of the segment)
        for ids in segments {
            let (cache, s) = readAndScore(model: model, ids: ids)
            caches.append(cache)
            scores.append(s)
        }
        var keys = [Float](repeating: 0, count: c.layers * c.kvHeads * p * hd), values = keys
        for l in 0..<c.layers {
            for h in 0..<c.kvHeads {
                // candidates: every token but the first segment's first (the sink, slot 0)
                var candidates: [(score: Float, segment: Int, position: Int)] = []
                for (g, s) in scores.enumerated() {
                    let n = segments[g].count, row = (l * c.kvHeads + h) * n
                    for t in (g == 0 ? first : 0)..<n { candidates.append((s[row + t], g, t)) }
                }
                let kept = (0..<first).map { (Float.infinity, 0, $0) } + candidates.sorted { $0.score > $1.score }.prefix(p - first)
                    .sorted { ($0.segment, $0.position) < ($1.segment, $1.position) }
                let base = (l * c.kvHeads + h) * p * hd
                for (slot, (_, g, t)) in kept.enumerated() {
                    let k = caches[g].key(layer: l, head: h) + t * hd, v = caches[g].value(layer: l, head: h) + t * hd
                    for i in 0..<hd {
                        keys[base + slot * hd + i] = k[i]
                        values[base + slot * hd + i] = v[i]
                    }
                }
                // keys from their corpus positions on to their slots
                let table = RoPETable(positions: kept.enumerated().map { slot, item in slot - item.2 }, headDim: hd, base: c.ropeBase)
                keys.withUnsafeMutableBufferPointer { RoPE.forward($0.baseAddress! + base, table: table, heads: 1, stride: hd) }
            }
        }
        return (keys, values, p)
    }

    /// Reads one segment: its KV cache and each token's score, (layers * kvHeads, n).
    static func readAndScore(model: LlamaModel, ids: [Int]) -> (KVCache, [Float]) {
        let c = model.config, n = ids.count, hd = c.headDim, qDim = c.heads * hd, group = c.heads / c.kvHeads
        let cache = model.makeCache(capacity: n)
        // the residual stream at each layer's input, (layers, n, dim)
        let inputs = FloatBuffer(count: c.layers * n * c.dim)
        _ = model.forward(tokens: [ids], caches: [cache]) { l, x in
            if l < c.layers { (inputs.pointer + l * n * c.dim).update(from: x, count: n * c.dim) }
        }
        let rope = RoPETable(positions: Array(0..<n), headDim: hd, base: c.ropeBase)
        let xn = FloatBuffer(count: n * c.dim), q = FloatBuffer(count: n * qDim)
        let chunk = min(n, 256)
        let probs = FloatBuffer(count: chunk * n)  // (queries of a chunk, keys)
        var scores = [Float](repeating: 0, count: c.layers * c.kvHeads * n)
        let scale = 1 / Float(hd).squareRoot()
        for (l, w) in model.layers.enumerated() {
            // the layer's queries, as its attention computed them
            RMSNorm.forward(out: xn.pointer, rstd: nil, x: inputs.pointer + l * n * c.dim, weight: w.attnNorm.pointer, rows: n, dim: c.dim, eps: c.rmsEps)
            Linear.forward([(w.wq, q.pointer)], x: xn.pointer, rows: n)
            RoPE.forward(q.pointer, table: rope, heads: c.heads, stride: qDim)
            for kv in 0..<c.kvHeads {
                var received = [Float](repeating: 0, count: n)
                for j in 0..<group {
                    let head = kv * group + j
                    for first in stride(from: 0, to: n, by: chunk) {
                        let m = min(chunk, n - first)
                        // probs (m, n) = softmax over keys 0...query of scale * Q (m, hd) K^T (hd, n)
                        BLAS.gemm(transB: true, m: m, n: n, k: hd, alpha: scale, a: q.pointer + first * qDim + head * hd, lda: qDim,
                                  b: cache.key(layer: l, head: kv), ldb: hd, c: probs.pointer, ldc: n)
                        for t in 0..<m {
                            let row = probs.pointer + t * n
                            Softmax.forward(row, valid: first + t + 1, width: n)
                            Vector.add(row, into: &received, n)
                        }
                    }
                }
                // mean over the queries that see a token, then the best of its neighbourhood
                let mean = (0..<n).map { received[$0] / Float(n - $0) }
                for t in 0..<n {
                    let lo = max(0, t - radius), hi = min(n - 1, t + radius)
                    scores[(l * c.kvHeads + kv) * n + t] = mean[lo...hi].max()!
                }
            }
        }
        return (cache, scores)
    }
}
