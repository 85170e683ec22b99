/// SwiGLU gate: out = silu(gate) * up, silu(x) = x * sigmoid(x).
public enum SwiGLU {
    /// out (N), gate (N), up (N); out may alias gate.
    public static func forward(out: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count: Int) {
        var i = 0
        let g = UnsafeRawPointer(gate), u = UnsafeRawPointer(up), o = UnsafeMutableRawPointer(out)
        while i + 16 <= count {
            let gv = g.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            let uv = u.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            o.storeBytes(of: gv / (1 + FastMath.exp(-gv)) * uv, toByteOffset: i * 4, as: SIMD16<Float>.self)
            i += 16
        }
        while i < count { out[i] = gate[i] / (1 + FastMath.exp(-gate[i])) * up[i]; i += 1 }
    }

    /// dgate (N) += and dup (N) += the gradients of forward given dout (N), gate (N), up (N).
    /// Differentiates `out = g * sig(g) * u`: dup = dout * g * sig(g);
    /// dgate = dout * u * sig(g) * (1 + g * (1 - sig(g))). Accumulates, as every backward does.
    public static func backward(dgate: UnsafeMutablePointer<Float>, dup: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count: Int) {
        var i = 0
        let dg = UnsafeMutableRawPointer(dgate), du = UnsafeMutableRawPointer(dup), dy = UnsafeRawPointer(dout)
        let g = UnsafeRawPointer(gate), u = UnsafeRawPointer(up)
        while i + 16 <= count {
            let gv = g.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            let uv = u.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            let dyv = dy.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            let sig = 1 / (1 + FastMath.exp(-gv))
            let duv = du.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            let dgv = dg.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            du.storeBytes(of: duv + dyv * gv * sig, toByteOffset: i * 4, as: SIMD16<Float>.self)
            dg.storeBytes(of: dgv + dyv * uv * sig * (1 + gv * (1 - sig)), toByteOffset: i * 4, as: SIMD16<Float>.self)
            i += 16
        }
        while i < count {
            let sig = 1 / (1 + FastMath.exp(-gate[i]))
            let d = dout[i]
            dup[i] += d * gate[i] * sig
            dgate[i] += d * up[i] * sig * (1 + gate[i] * (1 - sig))
            i += 1
        }
    }
}
