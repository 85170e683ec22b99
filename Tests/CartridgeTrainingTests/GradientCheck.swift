import CartridgeKernels
import CartridgeModel
import XCTest

/// Central finite differences in float32 on small, well-conditioned shapes (values of order 1),
/// where the truncation and rounding errors of h = 1e-2 stay near 1e-4 relative.
enum GradientCheck {
    /// Compares `analytic` with central differences of `loss` at `x` for every element (or
    /// `sample` random elements), returns the largest relative error and prints it.
    static func largestError(_ name: String, x: [Float], analytic: [Float], h: Float = 1e-2, sample: Int? = nil,
                             loss: ([Float]) -> Double) -> Double {
        precondition(x.count == analytic.count)
        var rng = SplitMix64(seed: 17)
        let indices = sample.map { n in (0..<n).map { _ in Int(rng.next() % UInt64(x.count)) } } ?? Array(x.indices)
        var worst = 0.0
        for i in indices {
            var xp = x, xm = x
            xp[i] += h
            xm[i] -= h
            let fd = (loss(xp) - loss(xm)) / Double(2 * h)
            let an = Double(analytic[i])
            let err = abs(fd - an) / max(abs(fd), abs(an), 1e-2)
            worst = max(worst, err)
        }
        print("gradient check \(name): largest relative error \(String(format: "%.2e", worst)) over \(indices.count) elements")
        return worst
    }

    static func random(_ n: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in Float(rng.nextUnit() * 2 - 1) * scale }
    }

    /// sum_i c[i] * y[i] in float64: a random linear functional, so d loss / d y = c.
    static func project(_ y: [Float], _ c: [Float]) -> Double {
        zip(y, c).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
    }
}

/// A small llama with random weights (no quantized copies), for whole-model gradient checks.
enum TinyLlama {
    static func make(seed: UInt64 = 1, layers: Int = 2, dim: Int = 16, heads: Int = 4, kvHeads: Int = 2, ffn: Int = 24, vocab: Int = 40) -> LlamaModel {
        let c = ModelConfig(name: "tiny", layers: layers, dim: dim, heads: heads, kvHeads: kvHeads, ffnDim: ffn, vocabSize: vocab, ropeBase: 10000)
        var s = seed
        func buf(_ n: Int, _ scale: Float, offset: Float = 0) -> FloatBuffer {
            s += 1
            return FloatBuffer(GradientCheck.random(n, seed: s, scale: scale).map { $0 + offset })
        }
        func linear(_ out: Int, _ inF: Int) -> Linear {
            Linear(name: "w", weight: buf(out * inF, 1 / Float(inF).squareRoot() * 1.5), outFeatures: out, inFeatures: inF)
        }
        let hd = dim / heads
        let ls = (0..<layers).map { _ in
            LlamaLayer(attnNorm: buf(dim, 0.2, offset: 1), wq: linear(heads * hd, dim), wk: linear(kvHeads * hd, dim),
                       wv: linear(kvHeads * hd, dim), wo: linear(dim, heads * hd), ffnNorm: buf(dim, 0.2, offset: 1),
                       wGate: linear(ffn, dim), wUp: linear(ffn, dim), wDown: linear(dim, ffn))
        }
        let emb = buf(vocab * dim, 1)
        return LlamaModel(config: c, layers: ls, tokenEmbedding: emb, outputNorm: buf(dim, 0.2, offset: 1),
                          output: Linear(name: "emb", weight: emb, outFeatures: vocab, inFeatures: dim))
    }
}
