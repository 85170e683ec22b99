import CartridgeKernels

/// A frozen linear map y = x W^T with W (outFeatures, inFeatures), kept in f32 for sgemm and,
/// when the file stores it quantized, also as the file's blocks for fast matrix-vector products.
public final class Linear: @unchecked Sendable {
    public let name: String
    public let outFeatures: Int
    public let inFeatures: Int
    /// (outFeatures, inFeatures), row-major
    public let weight: FloatBuffer
    /// The stored blocks, used for decoding a few rows at a time.
    public let quantized: QuantizedMatrix?

    public init(name: String, weight: FloatBuffer, outFeatures: Int, inFeatures: Int, quantized: QuantizedMatrix? = nil) {
        invariant(weight.count == outFeatures * inFeatures)
        self.name = name
        self.weight = weight
        self.outFeatures = outFeatures
        self.inFeatures = inFeatures
        self.quantized = quantized
    }

    /// Rows up to which a prompt's products use the quantized blocks; beyond, sgemm on the f32
    /// weights (what the reference checks were measured on). Batched decoding, one row per
    /// sequence, uses the quantized blocks up to `QuantizedMatrix.maxRows` rows, so each
    /// sequence's row gets the same bits whatever the batch.
    public static let quantizedPromptRows = 4

    static func useQuantized(rows: Int, decoding: Bool) -> Bool {
        rows <= (decoding ? QuantizedMatrix.maxRows : quantizedPromptRows)
    }

    /// Several maps of the same input: out_j (rows, outFeatures_j) = x (rows, inFeatures) W_j^T.
    /// For a few rows the quantized products share one parallel pass. `decoding`: every row is
    /// one sequence's next token.
    public static func forward(_ maps: [(Linear, UnsafeMutablePointer<Float>)], x: UnsafePointer<Float>, rows: Int, decoding: Bool = false) {
        let quantized = maps.compactMap { m in m.0.quantized.map { ($0, m.1) } }
        if useQuantized(rows: rows, decoding: decoding) && quantized.count == maps.count {
            QuantizedMatrix.multiply(quantized, x: x, rows: rows)
        } else {
            for (linear, out) in maps { linear.forward(out: out, x: x, rows: rows, decoding: decoding) }
        }
    }

    /// out (rows, outFeatures) = x (rows, inFeatures) W^T
    public func forward(out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, rows: Int, decoding: Bool = false) {
        if Self.useQuantized(rows: rows, decoding: decoding), let q = quantized {
            q.multiply(out: out, x: x, rows: rows)
        } else {
            BLAS.gemm(transB: true, m: rows, n: outFeatures, k: inFeatures, a: x, lda: inFeatures,
                      b: weight.pointer, ldb: inFeatures, c: out, ldc: outFeatures)
        }
    }

    /// dx (rows, inFeatures) += dout (rows, outFeatures) W: the gradient of `forward` with respect
    /// to its input, accumulated as every backward does (`docs/training.md`). Differentiates
    /// `out = x W^T`. No weight gradient: the model is frozen.
    public func backward(dx: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, rows: Int) {
        BLAS.gemm(m: rows, n: inFeatures, k: outFeatures, a: dout, lda: outFeatures, b: weight.pointer, ldb: inFeatures,
                  beta: 1, c: dx, ldc: inFeatures)
    }
}
