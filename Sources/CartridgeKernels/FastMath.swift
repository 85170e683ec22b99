/// Vectorized exp for f32 (range reduction to [-ln2/2, ln2/2] and a degree-6 polynomial,
/// about 1 ulp of relative error), so softmax and SiLU do not call libm once per element.
public enum FastMath {
    @inline(__always)
    public static func exp(_ x: SIMD16<Float>) -> SIMD16<Float> {
        // Only same-type vector operations here: Swift's generic SIMD conversions are not vectorized.
        var x = x.replacing(with: -87.3, where: x .< -87.3)
        x = x.replacing(with: 88.7, where: x .> 88.7)
        // n = round(x / ln 2), using the 1.5 * 2^23 trick: its low mantissa bits hold n
        let magic: Float = 12_582_912
        let t = x * 1.442_695_04 + magic
        let n = t - magic
        var r = x - n * 0.693_359_375
        r = r - n * -2.121_944_4e-4
        var p = SIMD16<Float>(repeating: 1.987_569_15e-4)
        p = p * r + 1.398_199_95e-3
        p = p * r + 8.333_451_9e-3
        p = p * r + 4.166_579_59e-2
        p = p * r + 1.666_666_55e-1
        p = p * r + 5.000_000_12e-1
        let e = p * r * r + r + 1
        let ni = unsafeBitCast(t, to: SIMD16<Int32>.self) &- Int32(bitPattern: magic.bitPattern)
        let pow2 = (ni &+ 127) &<< 23
        return e * unsafeBitCast(pow2, to: SIMD16<Float>.self)
    }

    @inline(__always)
    public static func exp(_ x: Float) -> Float { exp(SIMD16(repeating: x))[0] }

    /// In place: a[i] = exp(a[i] - shift), returning the sum of the results.
    @inline(__always)
    public static func expShiftedSum(_ a: UnsafeMutablePointer<Float>, _ n: Int, shift: Float) -> Float {
        var acc = SIMD16<Float>()
        var i = 0
        let raw = UnsafeMutableRawPointer(a)
        while i + 16 <= n {
            let e = exp(raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self) - shift)
            raw.storeBytes(of: e, toByteOffset: i * 4, as: SIMD16<Float>.self)
            acc += e
            i += 16
        }
        var s = acc.sum()
        while i < n { let e = exp(a[i] - shift); a[i] = e; s += e; i += 1 }
        return s
    }
}
