import CartridgeKernels
import CartridgeModel
import Foundation

/// Computes a loss over a batch of sequences read after a trainable prefix, and its exact
/// gradient with respect to the prefix's keys and values, through the whole frozen model.
///
/// The backward pass runs through every layer's activations (tied LM head, final norm, MLP,
/// attention, RoPE, RMSNorm, residual stream) but computes no weight gradient.
///
/// Buffers are kept between calls and grown when a batch has more rows (fresh pages cost
/// about 10% of a step); one trainer evaluates one batch at a time.
public final class PrefixTrainer: @unchecked Sendable {
    public let model: LlamaModel
    /// Rows of logits formed at once in the LM head (bounds the (rows, vocab) buffer).
    static let headChunk = 128

    private var workspace: Workspace?

    public init(model: LlamaModel) {
        self.model = model
    }

    /// Every buffer of one pass over a batch, for up to `rows` rows.
    final class Workspace {
        let rows: Int
        let acts: [LayerActivations]
        let xOut, xn, proj, hidden, dx, dq, dk, dv, dgate, dup, datt: FloatBuffer

        init(rows r: Int, config c: ModelConfig) {
            rows = r
            acts = (0..<c.layers).map { _ in LayerActivations(rows: r, config: c) }
            let qDim = c.heads * c.headDim, kvDim = c.kvHeads * c.headDim
            xOut = FloatBuffer(count: r * c.dim)           // (R, D) output of the last layer
            xn = FloatBuffer(count: r * c.dim)             // (R, D) normed input / its gradient
            proj = FloatBuffer(count: r * c.dim)           // (R, D) branch output
            hidden = FloatBuffer(count: r * c.ffnDim)      // (R, F) MLP hidden / its gradient
            dx = FloatBuffer(count: r * c.dim)             // (R, D) gradient down the residual stream
            dq = FloatBuffer(count: r * qDim)
            dk = FloatBuffer(count: r * kvDim)
            dv = FloatBuffer(count: r * kvDim)
            dgate = FloatBuffer(count: r * c.ffnDim)
            dup = FloatBuffer(count: r * c.ffnDim)
            datt = FloatBuffer(count: r * qDim)
            logits = FloatBuffer(count: PrefixTrainer.headChunk * c.vocabSize)
        }

        /// (headChunk, vocab) logits of the LM head, overwritten by their gradient
        let logits: FloatBuffer
    }

    private func workspace(rows: Int) -> Workspace {
        if let w = workspace, w.rows >= rows { return w }
        workspace = nil  // release the old buffers first
        let w = Workspace(rows: rows, config: model.config)
        workspace = w
        return w
    }

    /// The loss of one batch.
    public struct Evaluation: Sendable {
        /// Weighted mean loss over supervised rows, the hidden-state term included.
        public var loss: Double
        /// The hidden-state term of `loss` (0 without targets).
        public var hiddenLoss: Double = 0
        /// Sum of the row weights (the normalizer).
        public var weight: Double
        /// Rows in the batch.
        public var rows: Int
    }

    /// Activations one layer keeps for its backward pass; R rows.
    final class LayerActivations {
        let xIn: FloatBuffer    // (R, D) input of the layer (residual stream)
        let rstd1: FloatBuffer  // (R)
        let q: FloatBuffer      // (R, heads*hd) after RoPE
        let k: FloatBuffer      // (R, kvHeads*hd) after RoPE
        let v: FloatBuffer      // (R, kvHeads*hd)
        let att: FloatBuffer    // (R, heads*hd) attention output before Wo
        let xMid: FloatBuffer   // (R, D) residual after attention
        let rstd2: FloatBuffer  // (R)
        let gate: FloatBuffer   // (R, F) before SiLU
        let up: FloatBuffer     // (R, F)

        init(rows r: Int, config c: ModelConfig) {
            xIn = FloatBuffer(count: r * c.dim)
            rstd1 = FloatBuffer(count: r)
            q = FloatBuffer(count: r * c.heads * c.headDim)
            k = FloatBuffer(count: r * c.kvHeads * c.headDim)
            v = FloatBuffer(count: r * c.kvHeads * c.headDim)
            att = FloatBuffer(count: r * c.heads * c.headDim)
            xMid = FloatBuffer(count: r * c.dim)
            rstd2 = FloatBuffer(count: r)
            gate = FloatBuffer(count: r * c.ffnDim)
            up = FloatBuffer(count: r * c.ffnDim)
        }

        static func bytes(rows r: Int, config c: ModelConfig) -> Int {
            4 * r * (2 * c.dim + 2 + 2 * c.heads * c.headDim + 2 * c.kvHeads * c.headDim + 2 * c.ffnDim)
        }
    }

    /// Bytes of activations a batch of `rows` tokens keeps between the passes (all layers).
    public func activationBytes(rows: Int) -> Int {
        model.config.layers * LayerActivations.bytes(rows: rows, config: model.config) + 4 * rows * (model.config.dim + 1)
    }

    /// Loss of the batch (the forward pass only); with `targets`, the hidden-state term included.
    public func loss(prefix: TrainablePrefix, batch: [TrainingSequence], targets: HiddenStateTargets? = nil) -> Evaluation {
        forwardAndBackward(prefix: prefix, batch: batch, targets: targets, gradKeys: nil, gradValues: nil)
    }

    /// Loss of the batch and, by the backward pass, its gradient with respect to the prefix's keys
    /// and values: written into `gradKeys`/`gradValues` (same shape as the prefix tensors;
    /// overwritten, not accumulated: each call starts from zero). With `targets`, the loss adds
    /// the hidden-state term of deep context distillation (`HiddenStateTargets`).
    public func lossAndGradient(prefix: TrainablePrefix, batch: [TrainingSequence], targets: HiddenStateTargets? = nil,
                                gradKeys: FloatBuffer, gradValues: FloatBuffer) -> Evaluation {
        forwardAndBackward(prefix: prefix, batch: batch, targets: targets, gradKeys: gradKeys, gradValues: gradValues)
    }

    /// The forward pass keeping activations, the loss, and the backward pass when gradients are asked for.
    private func forwardAndBackward(prefix: TrainablePrefix, batch: [TrainingSequence], targets: HiddenStateTargets?,
                                    gradKeys: FloatBuffer?, gradValues: FloatBuffer?) -> Evaluation {
        let c = model.config
        invariant(prefix.layers == c.layers && prefix.kvHeads == c.kvHeads && prefix.headDim == c.headDim)
        invariant(!batch.isEmpty && batch.allSatisfy { !$0.tokens.isEmpty })
        let wantGrad = gradKeys != nil
        let p = prefix.length, dim = c.dim, hd = c.headDim, qDim = c.heads * hd, kvDim = c.kvHeads * hd
        let rows = batch.reduce(0) { $0 + $1.tokens.count }
        invariant(targets.map { $0.states.count == c.layers * rows * dim } ?? true, "hidden-state targets of another shape than the batch")
        var starts: [Int] = [], positions: [Int] = []
        for s in batch {
            starts.append(positions.count)
            positions += (0..<s.tokens.count).map { p + $0 }
        }
        let rope = RoPETable(positions: positions, headDim: hd, base: c.ropeBase)
        let maxLen = batch.map(\.tokens.count).max()!
        let scratch = AttentionScratch(prefix: p, maxLength: maxLen, headDim: hd)

        // ---- forward, keeping activations ----
        let ws = workspace(rows: rows)
        let acts = ws.acts, xOut = ws.xOut, xn = ws.xn, proj = ws.proj, hidden = ws.hidden
        for (r, id) in batch.flatMap(\.tokens).enumerated() {
            invariant(id >= 0 && id < c.vocabSize, "token id \(id) out of range")
            (acts[0].xIn.pointer + r * dim).update(from: model.tokenEmbedding.pointer + id * dim, count: dim)
        }
        for (l, w) in model.layers.enumerated() {
            let a = acts[l]
            Self.norm(out: xn.pointer, rstd: a.rstd1.pointer, x: a.xIn.pointer, weight: w.attnNorm.pointer, rows: rows, dim: dim, eps: c.rmsEps)
            w.wq.forward(out: a.q.pointer, x: xn.pointer, rows: rows)
            w.wk.forward(out: a.k.pointer, x: xn.pointer, rows: rows)
            w.wv.forward(out: a.v.pointer, x: xn.pointer, rows: rows)
            RoPE.forward(a.q.pointer, table: rope, heads: c.heads, stride: qDim)
            RoPE.forward(a.k.pointer, table: rope, heads: c.kvHeads, stride: kvDim)
            for (s, seq) in batch.enumerated() {
                let r0 = starts[s], n = seq.tokens.count
                for g in 0..<c.kvHeads {
                    scratch.gather(prefix: prefix, layer: l, head: g, k: a.k.pointer + r0 * kvDim + g * hd,
                                   v: a.v.pointer + r0 * kvDim + g * hd, n: n, stride: kvDim)
                    PrefixAttention.forward(out: a.att.pointer + r0 * qDim, probs: scratch.probs.pointer,
                                            q: a.q.pointer + r0 * qDim, keys: scratch.keys.pointer, values: scratch.values.pointer,
                                            n: n, prefix: p, heads: (g * c.groupSize)..<((g + 1) * c.groupSize), headDim: hd, stride: qDim)
                }
            }
            w.wo.forward(out: proj.pointer, x: a.att.pointer, rows: rows)
            let next = l + 1 < c.layers ? acts[l + 1].xIn : xOut
            for i in 0..<(rows * dim) { a.xMid[i] = a.xIn[i] + proj[i] }
            Self.norm(out: xn.pointer, rstd: a.rstd2.pointer, x: a.xMid.pointer, weight: w.ffnNorm.pointer, rows: rows, dim: dim, eps: c.rmsEps)
            w.wGate.forward(out: a.gate.pointer, x: xn.pointer, rows: rows)
            w.wUp.forward(out: a.up.pointer, x: xn.pointer, rows: rows)
            let (h, g, u, f) = (hidden.pointer, a.gate.pointer, a.up.pointer, c.ffnDim)
            parallelRows(rows) { r in SwiGLU.forward(out: h + r.lowerBound * f, gate: g + r.lowerBound * f, up: u + r.lowerBound * f, count: r.count * f) }
            w.wDown.forward(out: proj.pointer, x: hidden.pointer, rows: rows)
            for i in 0..<(rows * dim) { next[i] = a.xMid[i] + proj[i] }
        }

        // ---- the hidden-state term: each layer's output against the teacher's (layer l's output
        // is layer l+1's input, the last one's is xOut) ----
        let rowWeights = batch.flatMap(\.supervision.weights)
        func layerOutput(_ l: Int) -> FloatBuffer { l + 1 < c.layers ? acts[l + 1].xIn : xOut }
        var hiddenLoss = 0.0, hiddenScales: [Float] = []
        if let targets {
            for l in 0..<c.layers {
                let (value, scale) = HiddenStateDistance.forward(h: layerOutput(l).pointer, t: targets.states.pointer + l * rows * dim,
                                                                 rowWeights: rowWeights, dim: dim, weight: Double(targets.weight) / Double(c.layers))
                hiddenLoss += value
                hiddenScales.append(scale)
            }
        }

        // ---- loss and its gradient at the last layer's output, in chunks of supervised rows ----
        let dx = ws.dx
        let (headLoss, weight) = headLossAndGradient(batch: batch, xOut: xOut, logits: ws.logits, dx: wantGrad ? dx : nil)
        let result = Evaluation(loss: headLoss + hiddenLoss, hiddenLoss: hiddenLoss, weight: weight, rows: rows)
        guard wantGrad, let gK = gradKeys, let gV = gradValues else { return result }
        gK.zero()
        gV.zero()

        // ---- backward through the layers ----
        let dq = ws.dq, dk = ws.dk, dv = ws.dv, dgate = ws.dgate, dup = ws.dup, datt = ws.datt
        for l in stride(from: c.layers - 1, through: 0, by: -1) {
            let w = model.layers[l], a = acts[l]
            if let targets {  // the hidden-state term's gradient at this layer's output
                HiddenStateDistance.backward(dh: dx.pointer, h: layerOutput(l).pointer, t: targets.states.pointer + l * rows * dim,
                                             rowWeights: rowWeights, dim: dim, scale: hiddenScales[l])
            }
            // MLP: x_out = x_mid + (silu(gate) * up) Wd^T, gate/up = rmsnorm(x_mid) Wg^T / Wu^T
            hidden.pointer.update(repeating: 0, count: rows * c.ffnDim)
            w.wDown.backward(dx: hidden.pointer, dout: dx.pointer, rows: rows)
            let (dg, du, dh, g, u, f) = (dgate.pointer, dup.pointer, hidden.pointer, a.gate.pointer, a.up.pointer, c.ffnDim)
            parallelRows(rows) { r in
                let o = r.lowerBound * f
                (dg + o).update(repeating: 0, count: r.count * f)
                (du + o).update(repeating: 0, count: r.count * f)
                SwiGLU.backward(dgate: dg + o, dup: du + o, dout: dh + o, gate: g + o, up: u + o, count: r.count * f)
            }
            xn.pointer.update(repeating: 0, count: rows * dim)
            w.wGate.backward(dx: xn.pointer, dout: dgate.pointer, rows: rows)
            w.wUp.backward(dx: xn.pointer, dout: dup.pointer, rows: rows)
            Self.normBackward(dx: dx.pointer, dout: xn.pointer, rstd: a.rstd2.pointer, x: a.xMid.pointer, weight: w.ffnNorm.pointer, rows: rows, dim: dim)
            // attention: x_mid = x_in + att Wo^T
            datt.pointer.update(repeating: 0, count: rows * qDim)
            w.wo.backward(dx: datt.pointer, dout: dx.pointer, rows: rows)
            dq.zero()
            for (s, seq) in batch.enumerated() {
                let r0 = starts[s], n = seq.tokens.count
                for g in 0..<c.kvHeads {
                    scratch.gather(prefix: prefix, layer: l, head: g, k: a.k.pointer + r0 * kvDim + g * hd,
                                   v: a.v.pointer + r0 * kvDim + g * hd, n: n, stride: kvDim)
                    scratch.clearGradients(n: n)
                    PrefixAttention.backward(dq: dq.pointer + r0 * qDim, dkeys: scratch.dkeys.pointer, dvalues: scratch.dvalues.pointer,
                                             scratch: scratch.dprobs.pointer, probs: scratch.probs.pointer,
                                             dout: datt.pointer + r0 * qDim, q: a.q.pointer + r0 * qDim,
                                             keys: scratch.keys.pointer, values: scratch.values.pointer,
                                             n: n, prefix: p, heads: (g * c.groupSize)..<((g + 1) * c.groupSize), headDim: hd, stride: qDim)
                    scratch.scatter(gradKeys: gK, gradValues: gV, prefix: prefix, layer: l, head: g,
                                    dk: dk.pointer + r0 * kvDim + g * hd, dv: dv.pointer + r0 * kvDim + g * hd, n: n, stride: kvDim)
                }
            }
            if l == 0 { break }  // nothing below layer 0 is trainable
            RoPE.backward(dq.pointer, table: rope, heads: c.heads, stride: qDim)
            RoPE.backward(dk.pointer, table: rope, heads: c.kvHeads, stride: kvDim)
            // q/k/v = rmsnorm(x_in) Wq^T / Wk^T / Wv^T
            xn.pointer.update(repeating: 0, count: rows * dim)
            w.wq.backward(dx: xn.pointer, dout: dq.pointer, rows: rows)
            w.wk.backward(dx: xn.pointer, dout: dk.pointer, rows: rows)
            w.wv.backward(dx: xn.pointer, dout: dv.pointer, rows: rows)
            Self.normBackward(dx: dx.pointer, dout: xn.pointer, rstd: a.rstd1.pointer, x: a.xIn.pointer, weight: w.attnNorm.pointer, rows: rows, dim: dim)
        }
        return result
    }

    /// RMSNorm forward and backward with rows split across cores.
    static func norm(out: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>,
                     weight: UnsafePointer<Float>, rows: Int, dim: Int, eps: Float) {
        parallelRows(rows) { r in
            RMSNorm.forward(out: out + r.lowerBound * dim, rstd: rstd + r.lowerBound, x: x + r.lowerBound * dim,
                            weight: weight, rows: r.count, dim: dim, eps: eps)
        }
    }

    static func normBackward(dx: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                             x: UnsafePointer<Float>, weight: UnsafePointer<Float>, rows: Int, dim: Int) {
        parallelRows(rows) { r in
            RMSNorm.backward(dx: dx + r.lowerBound * dim, dout: dout + r.lowerBound * dim, rstd: rstd + r.lowerBound,
                             x: x + r.lowerBound * dim, weight: weight, rows: r.count, dim: dim)
        }
    }

    /// Final norm, tied LM head and loss on the supervised rows, `headChunk` rows at a time;
    /// writes d loss / d xOut into dx (zero on unsupervised rows). Returns (mean loss, total weight).
    func headLossAndGradient(batch: [TrainingSequence], xOut: FloatBuffer, logits: FloatBuffer, dx: FloatBuffer?) -> (Double, Double) {
        let c = model.config, dim = c.dim, vocab = c.vocabSize
        // supervised rows, with their batch-wide row index
        var picked: [(row: Int, seq: Int, t: Int, weight: Float)] = []
        var row = 0
        for (s, seq) in batch.enumerated() {
            for (t, w) in seq.supervision.weights.enumerated() where w != 0 { picked.append((row + t, s, t, w)) }
            row += seq.tokens.count
        }
        let total = picked.reduce(0.0) { $0 + Double($1.weight) }
        dx?.zero()
        guard total > 0 else { return (0, 0) }
        let chunk = min(Self.headChunk, picked.count)
        let xs = FloatBuffer(count: chunk * dim), xf = FloatBuffer(count: chunk * dim), rstd = FloatBuffer(count: chunk)
        let dxf = FloatBuffer(count: chunk * dim), dxs = FloatBuffer(count: chunk * dim)
        var loss = 0.0
        var i = 0
        while i < picked.count {
            let part = Array(picked[i..<min(picked.count, i + chunk)])
            let n = part.count
            for (j, pr) in part.enumerated() { (xs.pointer + j * dim).update(from: xOut.pointer + pr.row * dim, count: dim) }
            RMSNorm.forward(out: xf.pointer, rstd: rstd.pointer, x: xs.pointer, weight: model.outputNorm.pointer, rows: n, dim: dim, eps: c.rmsEps)
            // logits (n, V) = xf (n, D) E^T
            BLAS.gemm(transB: true, m: n, n: vocab, k: dim, a: xf.pointer, lda: dim, b: model.output.weight.pointer, ldb: dim,
                      c: logits.pointer, ldc: vocab)
            let weights = part.map { Float(Double($0.weight) / total) }
            switch batch[part[0].seq].supervision {
            case .nextToken:
                let targets = part.map { pr -> Int in
                    guard case let .nextToken(t, _) = batch[pr.seq].supervision else { fatalError("mixed supervision in one batch") }
                    return t[pr.t]
                }
                loss += Losses.crossEntropy(logits: logits.pointer, vocab: vocab, targets: targets, weights: weights)
            case .distillation:
                var ids: [[Int]] = [], lps: [[Float]] = []
                for pr in part {
                    guard case let .distillation(ti, tl, _) = batch[pr.seq].supervision else { fatalError("mixed supervision in one batch") }
                    ids.append(ti[pr.t])
                    lps.append(tl[pr.t])
                }
                loss += Losses.distillation(logits: logits.pointer, vocab: vocab, teacherIDs: ids, teacherLogProbs: lps, weights: weights)
            }
            if let dx {
                // dxf (n, D) = dlogits (n, V) E (V, D)
                dxf.zero()
                model.output.backward(dx: dxf.pointer, dout: logits.pointer, rows: n)
                dxs.zero()
                RMSNorm.backward(dx: dxs.pointer, dout: dxf.pointer, rstd: rstd.pointer, x: xs.pointer, weight: model.outputNorm.pointer, rows: n, dim: dim)
                for (j, pr) in part.enumerated() { (dx.pointer + pr.row * dim).update(from: dxs.pointer + j * dim, count: dim) }
            }
            i += n
        }
        return (loss, total)
    }
}

/// Per-(sequence, KV head) buffers: full keys/values (prefix slots, then the sequence's rows),
/// their gradients, and the probability rows.
final class AttentionScratch {
    let p: Int, hd: Int
    let keys: FloatBuffer      // (p+n, hd)
    let values: FloatBuffer    // (p+n, hd)
    let dkeys: FloatBuffer     // (p+n, hd)
    let dvalues: FloatBuffer   // (p+n, hd)
    let probs: FloatBuffer     // (n, p+n)
    let dprobs: FloatBuffer    // (n, p+n)

    init(prefix p: Int, maxLength n: Int, headDim hd: Int) {
        self.p = p
        self.hd = hd
        keys = FloatBuffer(count: (p + n) * hd)
        values = FloatBuffer(count: (p + n) * hd)
        dkeys = FloatBuffer(count: (p + n) * hd)
        dvalues = FloatBuffer(count: (p + n) * hd)
        probs = FloatBuffer(count: n * (p + n))
        dprobs = FloatBuffer(count: n * (p + n))
    }

    /// keys/values = [prefix slots of (layer, head); the sequence's n rows (strided)]
    func gather(prefix: TrainablePrefix, layer: Int, head: Int, k: UnsafePointer<Float>, v: UnsafePointer<Float>, n: Int, stride: Int) {
        keys.pointer.update(from: prefix.key(layer: layer, head: head), count: p * hd)
        values.pointer.update(from: prefix.value(layer: layer, head: head), count: p * hd)
        for t in 0..<n {
            (keys.pointer + (p + t) * hd).update(from: k + t * stride, count: hd)
            (values.pointer + (p + t) * hd).update(from: v + t * stride, count: hd)
        }
    }

    func clearGradients(n: Int) {
        dkeys.pointer.update(repeating: 0, count: (p + n) * hd)
        dvalues.pointer.update(repeating: 0, count: (p + n) * hd)
    }

    /// Prefix rows of the gradients accumulate into the prefix gradient; sequence rows go to dk/dv.
    func scatter(gradKeys: FloatBuffer, gradValues: FloatBuffer, prefix: TrainablePrefix, layer: Int, head: Int,
                 dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>, n: Int, stride: Int) {
        let offset = (layer * prefix.kvHeads + head) * prefix.length * hd
        Vector.add(dkeys.pointer, into: gradKeys.pointer + offset, p * hd)
        Vector.add(dvalues.pointer, into: gradValues.pointer + offset, p * hd)
        for t in 0..<n {
            (dk + t * stride).update(from: dkeys.pointer + (p + t) * hd, count: hd)
            (dv + t * stride).update(from: dvalues.pointer + (p + t) * hd, count: hd)
        }
    }
}
