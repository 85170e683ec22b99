import Foundation

/// SwiGLU gate: out = silu(gate) * up, silu(x) = x / (1 + exp(-x)).
public enum SwiGLU {
    /// out (N), gate (N), up (N)
    public static func forward(out: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count: Int) {
        for i in 0..<count {
            let g = gate[i]
            out[i] = g / (1 + expf(-g)) * up[i]
        }
    }
}
