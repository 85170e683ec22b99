import CartridgeKernels
import Foundation
import Logging

/// One decoder layer's frozen weights.
public struct LlamaLayer: @unchecked Sendable {
    public let attnNorm: FloatBuffer  // (dim)
    public let wq: Linear             // (heads*headDim, dim)
    public let wk: Linear             // (kvHeads*headDim, dim)
    public let wv: Linear             // (kvHeads*headDim, dim)
    public let wo: Linear             // (dim, heads*headDim)
    public let ffnNorm: FloatBuffer   // (dim)
    public let wGate: Linear          // (ffnDim, dim)
    public let wUp: Linear            // (ffnDim, dim)
    public let wDown: Linear          // (dim, ffnDim)

    public init(attnNorm: FloatBuffer, wq: Linear, wk: Linear, wv: Linear, wo: Linear,
                ffnNorm: FloatBuffer, wGate: Linear, wUp: Linear, wDown: Linear) {
        self.attnNorm = attnNorm
        self.wq = wq
        self.wk = wk
        self.wv = wv
        self.wo = wo
        self.ffnNorm = ffnNorm
        self.wGate = wGate
        self.wUp = wUp
        self.wDown = wDown
    }
}

/// A llama-architecture decoder in f32 on CPU: frozen weights, batched forward over KV caches.
public final class LlamaModel: @unchecked Sendable {
    public let config: ModelConfig
    public let layers: [LlamaLayer]
    public let tokenEmbedding: FloatBuffer  // (vocab, dim)
    public let outputNorm: FloatBuffer      // (dim)
    /// LM head (vocab, dim): the token embedding when the output is tied.
    public let output: Linear
    let logger = Logger(label: "cartridges.model")

    public init(config: ModelConfig, layers: [LlamaLayer], tokenEmbedding: FloatBuffer, outputNorm: FloatBuffer, output: Linear) {
        self.config = config
        self.layers = layers
        self.tokenEmbedding = tokenEmbedding
        self.outputNorm = outputNorm
        self.output = output
    }

    /// Runs new tokens of several sequences through the model, appending their keys and values
    /// to each sequence's cache. Sequence s's tokens sit at positions caches[s].count ...
    ///
    /// - Parameter residual: when given, sees the residual stream (R, dim) at the input of each
    ///   layer l = 0..<layers (l = 0: the token embeddings) and, with l = layers, the last layer's
    ///   output before the final norm. For checks against other implementations.
    /// - Returns: logits (R, vocab): one row per token when `allLogits`, else the last row of each sequence.
    public func forward(tokens: [[Int]], caches: [KVCache], allLogits: Bool = false,
                        residual: ((_ layer: Int, _ x: UnsafePointer<Float>) -> Void)? = nil) -> FloatBuffer {
        // Hard checks (kept under -Ounchecked): callers validate input first (`checkInput`), so
        // reaching one of these is a bug, and writing past a cache would corrupt memory.
        guard tokens.count == caches.count && !tokens.isEmpty else { fatalError("forward: \(tokens.count) sequences for \(caches.count) caches") }
        let c = config
        let dim = c.dim, hd = c.headDim, qDim = c.heads * hd, kvDim = c.kvHeads * hd
        let rows = tokens.reduce(0) { $0 + $1.count }
        var starts: [Int] = []  // first row of each sequence
        var positions: [Int] = []
        for (s, seq) in tokens.enumerated() {
            guard !seq.isEmpty && caches[s].remaining >= seq.count else {
                fatalError("forward: \(seq.count) new tokens but the KV cache has \(caches[s].remaining) free slots")
            }
            starts.append(positions.count)
            guard caches[s].base.map({ $0.count == caches[s].baseLength }) ?? true else { fatalError("forward: a shared base cache changed while shared") }
            positions += (0..<seq.count).map { caches[s].position + $0 }
        }
        let rope = RoPETable(positions: positions, headDim: hd, base: c.ropeBase)

        let x = FloatBuffer(count: rows * dim)          // (R, dim) residual stream
        let xn = FloatBuffer(count: rows * dim)         // (R, dim) normed input
        let q = FloatBuffer(count: rows * qDim)         // (R, heads*hd)
        let k = FloatBuffer(count: rows * kvDim)        // (R, kvHeads*hd)
        let v = FloatBuffer(count: rows * kvDim)        // (R, kvHeads*hd)
        let att = FloatBuffer(count: rows * qDim)       // (R, heads*hd) attention output
        let proj = FloatBuffer(count: rows * dim)       // (R, dim)
        let gate = FloatBuffer(count: rows * c.ffnDim)  // (R, ffn)
        let up = FloatBuffer(count: rows * c.ffnDim)    // (R, ffn)
        let maxKeys = zip(tokens, caches).map { $0.count + $1.count }.max()!
        let maxLen = tokens.map(\.count).max()!
        let decoding = maxLen == 1  // one new token per sequence
        let scores = FloatBuffer(count: maxLen * maxKeys)  // (T_s, keys) of one head
        // sequences that continue a shared base cache: each base's queries, attended over it together
        var sharing: [ObjectIdentifier: (base: KVCache, rows: [Int])] = [:]
        for (s, cache) in caches.enumerated() {
            guard let base = cache.base else { continue }
            sharing[ObjectIdentifier(base), default: (base, [])].rows += (starts[s]..<(starts[s] + tokens[s].count))
        }
        let baseParts = sharing.isEmpty ? nil : SharedBaseAttention.Partials(rows: rows, heads: c.heads, headDim: hd)

        for (r, id) in tokens.joined().enumerated() {
            guard id >= 0 && id < c.vocabSize else { fatalError("forward: token id \(id) outside the vocabulary (0..<\(c.vocabSize))") }
            (x.pointer + r * dim).update(from: tokenEmbedding.pointer + id * dim, count: dim)
        }

        for (l, w) in layers.enumerated() {
            residual?(l, x.pointer)
            // attention block
            RMSNorm.forward(out: xn.pointer, rstd: nil, x: x.pointer, weight: w.attnNorm.pointer, rows: rows, dim: dim, eps: c.rmsEps)
            Linear.forward([(w.wq, q.pointer), (w.wk, k.pointer), (w.wv, v.pointer)], x: xn.pointer, rows: rows, decoding: decoding)
            RoPE.forward(q.pointer, table: rope, heads: c.heads, stride: qDim)
            RoPE.forward(k.pointer, table: rope, heads: c.kvHeads, stride: kvDim)
            // Each sequence appends its keys and values and attends over its own cache. When every
            // sequence brings at most a few queries (batched decoding) the attention runs as plain
            // loops, so the sequences can run on all cores (no BLAS inside).
            let (kp, vp, qp, ap) = (k.pointer, v.pointer, q.pointer, att.pointer)
            if let parts = baseParts {
                for (base, rowsOfBase) in sharing.values {
                    SharedBaseAttention.attend(q: qp, rows: rowsOfBase, base: base, layer: l, heads: c.heads, headDim: hd, into: parts)
                }
            }
            let attend = { (s: Int, scratch: UnsafeMutablePointer<Float>) in
                let cache = caches[s], r0 = starts[s], n = tokens[s].count, past = cache.count
                for h in 0..<c.kvHeads {  // append this sequence's keys and values
                    let kc = cache.key(layer: l, head: h), vc = cache.value(layer: l, head: h)
                    for t in 0..<n {
                        (kc + (past + t) * hd).update(from: kp + (r0 + t) * kvDim + h * hd, count: hd)
                        (vc + (past + t) * hd).update(from: vp + (r0 + t) * kvDim + h * hd, count: hd)
                    }
                }
                if cache.base != nil, let parts = baseParts {
                    SharedBaseAttention.finish(out: ap + r0 * qDim, q: qp + r0 * qDim, cache: cache, layer: l, queries: n, past: past,
                                               heads: c.heads, headDim: hd, partials: parts, firstRow: r0)
                } else {
                    Attention.forward(out: ap + r0 * qDim, scores: scratch, q: qp + r0 * qDim, cache: cache, layer: l,
                                      queries: n, past: past, heads: c.heads, headDim: hd)
                }
            }
            if caches.count > 1 && maxLen <= Attention.smallQueries {
                ParallelFor.shared.run(caches.count, keepWarm: Linear.useQuantized(rows: rows, decoding: decoding)) { s in
                    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: maxLen * maxKeys)
                    defer { scratch.deallocate() }
                    attend(s, scratch)
                }
            } else {
                for s in caches.indices { attend(s, scores.pointer) }
            }
            w.wo.forward(out: proj.pointer, x: att.pointer, rows: rows, decoding: decoding)
            Vector.add(proj.pointer, into: x.pointer, rows * dim)
            // MLP block
            RMSNorm.forward(out: xn.pointer, rstd: nil, x: x.pointer, weight: w.ffnNorm.pointer, rows: rows, dim: dim, eps: c.rmsEps)
            Linear.forward([(w.wGate, gate.pointer), (w.wUp, up.pointer)], x: xn.pointer, rows: rows, decoding: decoding)
            SwiGLU.forward(out: gate.pointer, gate: gate.pointer, up: up.pointer, count: rows * c.ffnDim)
            w.wDown.forward(out: proj.pointer, x: gate.pointer, rows: rows, decoding: decoding)
            Vector.add(proj.pointer, into: x.pointer, rows * dim)
        }
        residual?(layers.count, x.pointer)
        for (s, cache) in caches.enumerated() { cache.advance(by: tokens[s].count) }

        // final norm and LM head on the rows whose logits are wanted
        let picked = allLogits ? Array(0..<rows) : tokens.indices.map { starts[$0] + tokens[$0].count - 1 }
        let sel = FloatBuffer(count: picked.count * dim)
        for (i, r) in picked.enumerated() { (sel.pointer + i * dim).update(from: x.pointer + r * dim, count: dim) }
        RMSNorm.forward(out: sel.pointer, rstd: nil, x: sel.pointer, weight: outputNorm.pointer, rows: picked.count, dim: dim, eps: c.rmsEps)
        let logits = FloatBuffer(count: picked.count * c.vocabSize)
        output.forward(out: logits.pointer, x: sel.pointer, rows: picked.count, decoding: decoding)
        return logits
    }

    /// A KV cache sized for this model.
    public func makeCache(capacity: Int? = nil) -> KVCache {
        KVCache(config: config, capacity: min(capacity ?? config.contextLength, config.contextLength))
    }

    /// A cache of `capacity` own slots continuing the shared cache `base` (read, never copied).
    public func makeCache(capacity: Int, continuing base: KVCache) -> KVCache {
        KVCache(config: config, capacity: min(capacity, config.contextLength - base.count), base: base)
    }
}
