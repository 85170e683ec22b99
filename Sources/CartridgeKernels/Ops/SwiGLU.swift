/// SwiGLU gate: out = silu(gate) * up, silu(x) = x / (1 + exp(-x)).
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
}
