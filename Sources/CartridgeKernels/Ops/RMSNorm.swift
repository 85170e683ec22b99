/// RMSNorm over rows: out[t,:] = x[t,:] * rstd[t] * weight, rstd[t] = 1 / sqrt(mean(x[t,:]^2) + eps).
public enum RMSNorm {
    /// out (T,C), rstd (T) or nil, x (T,C), weight (C). `out` may alias `x`.
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

    /// dx (T,C) += d/dx of forward, given dout (T,C), the forward's rstd (T), x (T,C), weight (C).
    /// Differentiates `o[i] = x[i] * r * w[i]` with r = (mean(x^2) + eps)^(-1/2):
    /// dx[i] = r * w[i] * dout[i] - x[i] * r^3 / C * sum_j(dout[j] * w[j] * x[j]).
    public static func backward(dx: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                                x: UnsafePointer<Float>, weight: UnsafePointer<Float>, rows: Int, dim: Int) {
        for t in 0..<rows {
            let xr = x + t * dim, dy = dout + t * dim, d = dx + t * dim
            let r = rstd[t]
            var dot: Float = 0
            for i in 0..<dim { dot += dy[i] * weight[i] * xr[i] }
            let c = r * r * r / Float(dim) * dot
            for i in 0..<dim { d[i] += r * weight[i] * dy[i] - xr[i] * c }
        }
    }
}
