/// Small vector primitives with SIMD accumulators (LLVM does not reassociate float sums by itself).
public enum Vector {
    /// sum_i a[i] * b[i]
    @inline(__always)
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc0 = SIMD16<Float>(), acc1 = SIMD16<Float>()
        var i = 0
        while i + 32 <= n {
            acc0 += UnsafeRawPointer(a + i).loadUnaligned(as: SIMD16<Float>.self) * UnsafeRawPointer(b + i).loadUnaligned(as: SIMD16<Float>.self)
            acc1 += UnsafeRawPointer(a + i + 16).loadUnaligned(as: SIMD16<Float>.self) * UnsafeRawPointer(b + i + 16).loadUnaligned(as: SIMD16<Float>.self)
            i += 32
        }
        var s = horizontalSum(acc0 + acc1)
        while i < n { s += a[i] * b[i]; i += 1 }
        return s
    }

    /// Sum of the 16 lanes by halving (vector adds), instead of `SIMD.sum()`'s generic lane loop.
    @inline(__always)
    public static func horizontalSum(_ v: SIMD16<Float>) -> Float {
        let v8 = v.lowHalf + v.highHalf
        let v4 = v8.lowHalf + v8.highHalf
        let v2 = v4.lowHalf + v4.highHalf
        return v2[0] + v2[1]
    }

    /// sum_i a[i]^2
    @inline(__always)
    public static func sumOfSquares(_ a: UnsafePointer<Float>, _ n: Int) -> Float { dot(a, a, n) }

    /// sum_i a[i]
    @inline(__always)
    public static func sum(_ a: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = SIMD16<Float>()
        var i = 0
        while i + 16 <= n { acc += UnsafeRawPointer(a + i).loadUnaligned(as: SIMD16<Float>.self); i += 16 }
        var s = horizontalSum(acc)
        while i < n { s += a[i]; i += 1 }
        return s
    }

    /// y[i] += alpha * x[i]
    @inline(__always)
    public static func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        for i in 0..<n { y[i] += alpha * x[i] }
    }

    /// y[i] += x[i]
    @inline(__always)
    public static func add(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, _ n: Int) {
        for i in 0..<n { y[i] += x[i] }
    }

    /// max_i a[i] (-inf for n == 0)
    @inline(__always)
    public static func max(_ a: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = SIMD16<Float>(repeating: -.infinity)
        var i = 0
        while i + 16 <= n {
            let v = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD16<Float>.self)
            acc = acc.replacing(with: v, where: v .> acc)
            i += 16
        }
        var m = acc.max()
        while i < n { m = Swift.max(m, a[i]); i += 1 }
        return m
    }

    /// a[i] *= s
    @inline(__always)
    public static func scale(_ a: UnsafeMutablePointer<Float>, by s: Float, _ n: Int) {
        for i in 0..<n { a[i] *= s }
    }

    /// Index of the largest value (first one on ties).
    public static func argmax(_ a: UnsafePointer<Float>, _ n: Int) -> Int {
        var best = 0
        var v = a[0]
        for i in 1..<n where a[i] > v { v = a[i]; best = i }
        return best
    }
}
