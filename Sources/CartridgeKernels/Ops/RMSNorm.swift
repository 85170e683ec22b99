/// RMSNorm over rows: out[t,:] = x[t,:] / sqrt(mean(x[t,:]^2) + eps) * weight.
public enum RMSNorm {
    /// out (T,C), rstd (T) or nil, x (T,C), weight (C)
    public static func forward(out: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>?,
                               x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                               rows: Int, dim: Int, eps: Float) {
        for t in 0..<rows {
            let xr = x + t * dim, o = out + t * dim
            let r = 1 / (Vector.sumOfSquares(xr, dim) / Float(dim) + eps).squareRoot()
            rstd?[t] = r
            for i in 0..<dim { o[i] = xr[i] * r * weight[i] }
        }
    }
}
