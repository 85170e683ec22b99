/// Softmax over the first `n` entries of a row, in place; entries past `n` are set to zero.
public enum Softmax {
    @inline(__always)
    public static func forward(_ row: UnsafeMutablePointer<Float>, valid n: Int, width: Int) {
        let m = Vector.max(row, n)
        let inv = 1 / FastMath.expShiftedSum(row, n, shift: m)
        Vector.scale(row, by: inv, n)
        if width > n { (row + n).update(repeating: 0, count: width - n) }
    }

    /// In place: dy (n) becomes dx given the forward's output y (n). Differentiates
    /// `y = softmax(x)`: dx[i] = y[i] * (dy[i] - sum_j dy[j] * y[j]).
    @inline(__always)
    public static func backward(_ dy: UnsafeMutablePointer<Float>, y: UnsafePointer<Float>, count n: Int) {
        let dot = Vector.dot(dy, y, n)
        for i in 0..<n { dy[i] = y[i] * (dy[i] - dot) }
    }

    /// log-sum-exp of a row (for log-softmax and losses); leaves the row unchanged.
    @inline(__always)
    public static func logSumExp(_ row: UnsafePointer<Float>, _ n: Int) -> Float {
        let m = Vector.max(row, n)
        var acc = SIMD16<Float>()
        var i = 0
        let raw = UnsafeRawPointer(row)
        while i + 16 <= n {
            acc += FastMath.exp(raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self) - m)
            i += 16
        }
        var s = acc.sum()
        while i < n { s += FastMath.exp(row[i] - m); i += 1 }
        return m + log(s)
    }
}

import Foundation
