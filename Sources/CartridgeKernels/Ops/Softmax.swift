import Foundation

/// Softmax over the first `n` entries of a row, in place; entries past `n` are set to zero.
public enum Softmax {
    @inline(__always)
    public static func forward(_ row: UnsafeMutablePointer<Float>, valid n: Int, width: Int) {
        var m = -Float.infinity
        for j in 0..<n where row[j] > m { m = row[j] }
        var s: Float = 0
        for j in 0..<n { let e = expf(row[j] - m); row[j] = e; s += e }
        let inv = 1 / s
        for j in 0..<n { row[j] *= inv }
        for j in n..<width { row[j] = 0 }
    }

    /// log-sum-exp of a row (for log-softmax and losses).
    @inline(__always)
    public static func logSumExp(_ row: UnsafePointer<Float>, _ n: Int) -> Float {
        var m = -Float.infinity
        for j in 0..<n where row[j] > m { m = row[j] }
        var s: Float = 0
        for j in 0..<n { s += expf(row[j] - m) }
        return m + logf(s)
    }
}
