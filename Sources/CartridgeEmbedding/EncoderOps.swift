import CartridgeKernels

/// Row-wise operations of a BERT encoder that the shared kernels do not have.
enum EncoderOps {
    /// LayerNorm over rows, in place: x[t,:] = (x[t,:] - mean) / sqrt(var + eps) * gamma + beta,
    /// with the population variance. x (rows, dim), gamma (dim), beta (dim).
    static func layerNorm(_ x: UnsafeMutablePointer<Float>, gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
                          rows: Int, dim: Int, eps: Float) {
        for t in 0..<rows {
            let row = x + t * dim
            let mean = Vector.sum(row, dim) / Float(dim)
            var acc = SIMD16<Float>()
            var i = 0
            while i + 16 <= dim {
                let d = UnsafeRawPointer(row + i).loadUnaligned(as: SIMD16<Float>.self) - mean
                acc += d * d
                i += 16
            }
            var squares = acc.sum()
            while i < dim { squares += (row[i] - mean) * (row[i] - mean); i += 1 }
            let inverse = 1 / (squares / Float(dim) + eps).squareRoot()
            for i in 0..<dim { row[i] = (row[i] - mean) * inverse * gamma[i] + beta[i] }
        }
    }

    /// x[t,:] += bias for every row. x (rows, dim), bias (dim).
    static func addBias(_ x: UnsafeMutablePointer<Float>, _ bias: UnsafePointer<Float>, rows: Int, dim: Int) {
        for t in 0..<rows { Vector.add(bias, into: x + t * dim, dim) }
    }

    /// Exact GELU, in place: x = x/2 * (1 + erf(x / sqrt 2)). x (count).
    static func gelu(_ x: UnsafeMutablePointer<Float>, count: Int) {
        let raw = UnsafeMutableRawPointer(x)
        var i = 0
        while i + 16 <= count {
            let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            raw.storeBytes(of: gelu(v), toByteOffset: i * 4, as: SIMD16<Float>.self)
            i += 16
        }
        if i < count {
            var tail = SIMD16<Float>()
            for j in i..<count { tail[j - i] = x[j] }
            let g = gelu(tail)
            for j in i..<count { x[j] = g[j - i] }
        }
    }

    @inline(__always)
    static func gelu(_ x: SIMD16<Float>) -> SIMD16<Float> {
        0.5 * x * (1 + erf(x * 0.707_106_781_186_547_5))
    }

    /// erf for 16 floats: erf(x) = sign(x) (1 - erfc(|x|)), with erfc(z) = t exp(-z^2 + P(t)),
    /// t = 1 / (1 + z/2), the Chebyshev fit of Numerical Recipes (erfcc; relative error of erfc
    /// below 1.2e-7 for every z >= 0), evaluated with the vectorized exp of `FastMath`.
    @inline(__always)
    static func erf(_ x: SIMD16<Float>) -> SIMD16<Float> {
        let z = x.replacing(with: -x, where: x .< 0)
        let t = 1 / (1 + 0.5 * z)
        var p = SIMD16<Float>(repeating: 0.170_872_77)
        p = p * t - 0.822_152_23
        p = p * t + 1.488_515_87
        p = p * t - 1.135_203_98
        p = p * t + 0.278_868_07
        p = p * t - 0.186_288_06
        p = p * t + 0.096_784_18
        p = p * t + 0.374_091_96
        p = p * t + 1.000_023_68
        p = p * t - 1.265_512_23
        let erfc = t * FastMath.exp(p - z * z)
        let magnitude = 1 - erfc
        return magnitude.replacing(with: -magnitude, where: x .< 0)
    }
}
