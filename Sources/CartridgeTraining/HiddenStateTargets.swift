import CartridgeKernels

/// The teacher's hidden states a batch's student rows are pulled towards: deep context
/// distillation (Caccia et al. 2025, "Training plug-n-play knowledge modules with deep context
/// distillation"). Besides the KL of the next-token distributions, every layer's output (the
/// residual stream after the layer) of each supervised row is matched to the teacher's at the
/// same token, so every layer's keys and values of the prefix get a direct signal.
///
/// The term added to the loss is `weight * mean over layers l of D_l`, with
/// `D_l = sum_r w_r |h_l,r - t_l,r|_1 / sum_r w_r |t_l,r|_1` over the rows r with a non-zero
/// supervision weight w_r: the mean absolute error relative to the teacher's mean magnitude.
public struct HiddenStateTargets: @unchecked Sendable {
    /// Weight of the hidden-state term relative to the distillation loss.
    public var weight: Float
    /// (layers, R, D): the teacher's residual stream after each layer l = 0..<layers, at every row
    /// of the batch (rows in batch order, as the trainer packs them); unsupervised rows are ignored.
    public var states: FloatBuffer

    public init(weight: Float, states: FloatBuffer) {
        self.weight = weight
        self.states = states
    }
}

/// The hidden-state term of one layer: forward (its value and the factor its gradient needs) and
/// backward (the gradient accumulated into the residual stream's), side by side.
enum HiddenStateDistance {
    /// D = scale * sum_r w_r |h_r - t_r|_1 for `rows` rows of width `dim`, with
    /// scale = `weight` / sum_r w_r |t_r|_1 (0 when the teacher's rows are all zero).
    /// - Returns: (D, scale).
    static func forward(h: UnsafePointer<Float>, t: UnsafePointer<Float>, rowWeights: [Float], dim: Int,
                        weight: Double) -> (value: Double, scale: Float) {
        var distance = 0.0, magnitude = 0.0
        for (r, w) in rowWeights.enumerated() where w != 0 {
            var d: Float = 0, m: Float = 0
            let hr = h + r * dim, tr = t + r * dim
            for i in 0..<dim {
                d += abs(hr[i] - tr[i])
                m += abs(tr[i])
            }
            distance += Double(w) * Double(d)
            magnitude += Double(w) * Double(m)
        }
        guard magnitude > 0 else { return (0, 0) }
        let scale = weight / magnitude
        return (distance * scale, Float(scale))
    }

    /// dh_r += scale * w_r * sign(h_r - t_r) (the subgradient 0 where they are equal).
    static func backward(dh: UnsafeMutablePointer<Float>, h: UnsafePointer<Float>, t: UnsafePointer<Float>,
                         rowWeights: [Float], dim: Int, scale: Float) {
        for (r, w) in rowWeights.enumerated() where w != 0 {
            let g = scale * w
            let hr = h + r * dim, tr = t + r * dim, dr = dh + r * dim
            for i in 0..<dim {
                let diff = hr[i] - tr[i]
                if diff > 0 { dr[i] += g } else if diff < 0 { dr[i] -= g }
            }
        }
    }
}
