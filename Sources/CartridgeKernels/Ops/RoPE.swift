import Foundation

/// Rotary position embedding on adjacent pairs (x[2i], x[2i+1]), the GGUF/llama.cpp layout.
/// Angle for pair i at position pos: pos * base^(-2i/headDim).
public struct RoPETable: Sendable {
    public let headDim: Int
    public let positions: [Int]
    /// cos and sin, each (T, headDim/2)
    public let cos: [Float]
    public let sin: [Float]

    public init(positions: [Int], headDim: Int, base: Double) {
        self.headDim = headDim
        self.positions = positions
        let half = headDim / 2
        var c = [Float](repeating: 0, count: positions.count * half)
        var s = c
        for (t, pos) in positions.enumerated() {
            for i in 0..<half {
                let invFreq = Float(1 / pow(base, Double(2 * i) / Double(headDim)))
                let angle = Double(Float(pos) * invFreq)
                c[t * half + i] = Float(Foundation.cos(angle))
                s[t * half + i] = Float(Foundation.sin(angle))
            }
        }
        cos = c
        sin = s
    }
}

public enum RoPE {
    /// In place: x (T, heads*headDim) with row stride `stride`, rotated by table row t.
    public static func forward(_ x: UnsafeMutablePointer<Float>, table: RoPETable, heads: Int, stride: Int) {
        rotate(x, table: table, heads: heads, stride: stride, sign: 1)
    }

    /// In place: dx from dout (same buffer). The rotation is orthogonal, so its transpose, the
    /// rotation by the opposite angle, carries the gradient back:
    /// forward `(a, b) -> (a c - b s, a s + b c)`; backward `(da, db) -> (da c + db s, -da s + db c)`.
    public static func backward(_ dx: UnsafeMutablePointer<Float>, table: RoPETable, heads: Int, stride: Int) {
        rotate(dx, table: table, heads: heads, stride: stride, sign: -1)
    }

    private static func rotate(_ x: UnsafeMutablePointer<Float>, table: RoPETable, heads: Int, stride: Int, sign: Float) {
        let half = table.headDim / 2
        table.cos.withUnsafeBufferPointer { cs in
            table.sin.withUnsafeBufferPointer { sn in
                for t in 0..<table.positions.count {
                    let c = cs.baseAddress! + t * half, s = sn.baseAddress! + t * half
                    for h in 0..<heads {
                        let v = x + t * stride + h * table.headDim
                        for i in 0..<half {
                            let a = v[2 * i], b = v[2 * i + 1], si = sign * s[i]
                            v[2 * i] = a * c[i] - b * si
                            v[2 * i + 1] = a * si + b * c[i]
                        }
                    }
                }
            }
        }
    }
}
