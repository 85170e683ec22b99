import CartridgeKernels
import Foundation

/// Adam hyper-parameters (no weight decay by default: the prefix is not regularized).
public struct AdamConfig: Codable, Sendable, Equatable {
    public var learningRate: Float
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var eps: Float = 1e-8
    public var weightDecay: Float = 0
    /// Decoupled pull toward the values the prefix had when the optimizer was made (its
    /// initialization): every step also moves x by -lr * anchor * (x - x0). 0 turns it off.
    public var anchor: Float = 0
    /// The keys' own anchor when it differs from the values' (keys route attention, values carry
    /// content: the keys can be held near the initialization while the values move freely).
    /// nil: `anchor` for both.
    public var keyAnchor: Float?

    public init(learningRate: Float, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 0, anchor: Float = 0, keyAnchor: Float? = nil) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
        self.anchor = anchor
        self.keyAnchor = keyAnchor
    }

    /// The pull on keys and on values.
    var anchors: (keys: Float, values: Float) { (keyAnchor ?? anchor, anchor) }
}

/// Errors reading saved optimizer state.
public enum OptimizerStateError: Error, CustomStringConvertible, Equatable {
    case notOptimizerState
    case shapeMismatch(expected: Int, found: Int)
    case truncated

    public var description: String {
        switch self {
        case .notOptimizerState: return "the file is not saved Adam state (bad magic)"
        case let .shapeMismatch(e, f): return "saved Adam state holds \(f) values, the prefix needs \(e): it belongs to another cartridge size"
        case .truncated: return "saved Adam state is truncated"
        }
    }
}

/// Adam with bias correction over a prefix's trainable slots (frozen slots are never touched).
/// m and v have the prefix tensors' shapes; `step` counts applied updates. With an anchor, the
/// prefix's values at construction are kept as the point it is pulled back to (make the
/// optimizer from the initialized prefix, before restoring a checkpoint into it).
public final class Adam: @unchecked Sendable {
    public let config: AdamConfig
    public private(set) var step = 0
    let mKeys: FloatBuffer, vKeys: FloatBuffer, mValues: FloatBuffer, vValues: FloatBuffer
    /// The initial keys and values (prefix shapes), each kept only when its anchor is above 0.
    let anchorKeys: FloatBuffer?, anchorValues: FloatBuffer?

    public init(config: AdamConfig, prefix: TrainablePrefix) {
        self.config = config
        let n = prefix.keys.count
        mKeys = FloatBuffer(count: n)
        vKeys = FloatBuffer(count: n)
        mValues = FloatBuffer(count: n)
        vValues = FloatBuffer(count: n)
        func copy(_ x: FloatBuffer, if pulled: Bool) -> FloatBuffer? {
            guard pulled else { return nil }
            let c = FloatBuffer(count: n)
            c.pointer.update(from: x.pointer, count: n)
            return c
        }
        anchorKeys = copy(prefix.keys, if: config.anchors.keys > 0)
        anchorValues = copy(prefix.values, if: config.anchors.values > 0)
    }

    /// One update of the trainable slots from the gradients (same shapes as the prefix tensors):
    /// m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
    /// x -= lr ((m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps) + anchor (x - x0)), with the keys'
    /// anchor on keys and the values' on values.
    /// `learningRate` overrides the configured rate for this step (a schedule); the anchor's
    /// pull scales with it, as decoupled weight decay does.
    public func update(prefix: TrainablePrefix, gradKeys: FloatBuffer, gradValues: FloatBuffer, learningRate: Float? = nil) {
        step += 1
        var c = config
        if let lr = learningRate { c.learningRate = lr }
        let bc1 = 1 - pow(c.beta1, Float(step)), bc2 = 1 - pow(c.beta2, Float(step))
        let slot = prefix.headDim, perHead = prefix.length * slot
        let a = c.anchors
        for (x, g, m, v, x0, anchor) in [(prefix.keys, gradKeys, mKeys, vKeys, anchorKeys, a.keys), (prefix.values, gradValues, mValues, vValues, anchorValues, a.values)] {
            for head in 0..<(prefix.layers * prefix.kvHeads) {
                for i in (head * perHead + prefix.frozen * slot)..<((head + 1) * perHead) {
                    let gi = g[i] + c.weightDecay * x[i]
                    m[i] = c.beta1 * m[i] + (1 - c.beta1) * gi
                    v[i] = c.beta2 * v[i] + (1 - c.beta2) * gi * gi
                    let pull = x0.map { anchor * (x[i] - $0[i]) } ?? 0
                    x[i] -= c.learningRate * ((m[i] / bc1) / ((v[i] / bc2).squareRoot() + c.eps) + pull)
                }
            }
        }
    }

    private static let magic: UInt32 = 0x4D41_4443  // "CDAM"

    /// The state (step, m, v) as bytes; `restore` reads it back bit for bit.
    public func serialized() -> Data {
        var d = Data()
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
        put(Self.magic)
        put(UInt64(step))
        put(UInt64(mKeys.count))
        for b in [mKeys, vKeys, mValues, vValues] {
            d.append(UnsafeBufferPointer(start: b.pointer, count: b.count))
        }
        return d
    }

    public func restore(from data: Data) throws {
        let n = mKeys.count
        guard data.count >= 20 else { throw OptimizerStateError.truncated }
        try data.withUnsafeBytes { raw in
            guard UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt32.self)) == Self.magic else { throw OptimizerStateError.notOptimizerState }
            let s = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 4, as: UInt64.self))
            let count = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 12, as: UInt64.self))
            guard count == UInt64(n) else { throw OptimizerStateError.shapeMismatch(expected: n, found: Int(clamping: count)) }
            guard data.count == 20 + 16 * n else { throw OptimizerStateError.truncated }
            for (i, b) in [mKeys, vKeys, mValues, vValues].enumerated() {
                UnsafeMutableRawPointer(b.pointer).copyMemory(from: raw.baseAddress! + 20 + i * 4 * n, byteCount: 4 * n)
            }
            step = Int(s)
        }
    }
}

/// L2 norm of the gradient over the trainable slots only, summed in float64.
public func trainableGradientNorm(prefix: TrainablePrefix, gradKeys: FloatBuffer, gradValues: FloatBuffer) -> Double {
    let slot = prefix.headDim, perHead = prefix.length * slot
    var s = 0.0
    for g in [gradKeys, gradValues] {
        for head in 0..<(prefix.layers * prefix.kvHeads) {
            for i in (head * perHead + prefix.frozen * slot)..<((head + 1) * perHead) { s += Double(g[i]) * Double(g[i]) }
        }
    }
    return s.squareRoot()
}
