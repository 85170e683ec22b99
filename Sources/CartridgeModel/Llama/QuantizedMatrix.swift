import CartridgeKernels
import Foundation

/// A weight matrix kept quantized (from Q8_0 or Q4_1 blocks) for matrix-vector products that
/// read about 3.5x fewer bytes than f32 weights. Used when decoding a few rows at a time.
///
/// Layout: the file's quant bytes (Q4_1: 16 bytes per block of 32, byte j holding column j in its
/// low nibble and column j + 16 in its high nibble; Q8_0: 32 signed bytes), and f32 block scales
/// (and Q4_1 minimums) widened once at load. The inner loop widens 8 bytes to 8 floats
/// (`vpmovzxbd`/`vpmovsxbd` + `vcvtdq2ps` when built for AVX2); a Q4_1 byte value v splits
/// exactly into hi = floor(v / 16) and lo = v - 16 hi. Products with the f32 activations are
/// multiply-added, so results match the f32 path up to summation order.
/// Row i: y = sum_b d_b * (q_b . x_b) + m_b * sum(x_b).
public final class QuantizedMatrix: @unchecked Sendable {
    /// Most activation rows of one product: a decoding step of up to 16 sequences beats sgemm on
    /// f32 weights (`cartridge-bench batch`: 6.7 ms for one row, 13.5 ms for four, 50 ms for
    /// sixteen, 95 ms for 32 rows through sgemm). `Linear` decides which path a product takes.
    public static let maxRows = 16
    public let type: GGMLType
    public let rows: Int
    public let cols: Int
    /// (rows, cols/32) block scales
    let scales: UnsafeMutablePointer<Float>
    /// (rows, cols/32) block minimums (Q4_1 only)
    let mins: UnsafeMutablePointer<Float>?
    /// (rows, cols/32, bytesPerBlock) quants
    let quants: UnsafeMutableRawPointer
    let bytesPerBlock: Int

    /// Returns nil for types or shapes without a fast kernel.
    public init?(type: GGMLType, data: UnsafeRawBufferPointer, rows: Int, cols: Int) {
        guard type == .q8_0 || type == .q4_1, cols % 32 == 0,
              data.count == rows * cols / 32 * type.blockBytes else { return nil }
        self.type = type
        self.rows = rows
        self.cols = cols
        let nb = cols / 32
        scales = .allocate(capacity: rows * nb)
        mins = type == .q4_1 ? .allocate(capacity: rows * nb) : nil
        bytesPerBlock = type == .q4_1 ? 16 : 32
        quants = .allocate(byteCount: rows * nb * bytesPerBlock, alignment: 64)
        let src = data.baseAddress!
        for blockIndex in 0..<(rows * nb) {
            let blk = src + blockIndex * type.blockBytes
            scales[blockIndex] = HalfPrecision.float(f16: blk.loadUnaligned(as: UInt16.self))
            let headerBytes = type == .q4_1 ? 4 : 2
            if type == .q4_1 {
                mins![blockIndex] = HalfPrecision.float(f16: blk.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
            }
            (quants + blockIndex * bytesPerBlock).copyMemory(from: blk + headerBytes, byteCount: bytesPerBlock)
        }
    }

    deinit {
        scales.deallocate()
        mins?.deallocate()
        quants.deallocate()
    }

    /// Bytes held by the quantized weights.
    public var bytes: Int { rows * cols / 32 * (bytesPerBlock + (mins == nil ? 4 : 8)) }

    /// out (n, rows) = x (n, cols) W^T, for n <= maxRows. Row i of the result is the same bits
    /// whatever n is (batched decoding answers exactly as one sequence alone does).
    public func multiply(out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, rows n: Int) {
        Self.multiply([(self, out)], x: x, rows: n)
    }

    /// Several products of the same activations, (n, rows_j) = x (n, cols) W_j^T, in one parallel
    /// pass (one thread hand-off instead of one per matrix).
    public static func multiply(_ jobs: [(QuantizedMatrix, UnsafeMutablePointer<Float>)], x: UnsafePointer<Float>, rows n: Int) {
        invariant(n <= maxRows && !jobs.isEmpty)
        let cols = jobs[0].0.cols, nb = cols / 32
        invariant(jobs.allSatisfy { $0.0.cols == cols })
        // per-block sums of x, for the Q4_1 minimums: (n, nb)
        let sums = UnsafeMutablePointer<Float>.allocate(capacity: n * nb)
        defer { sums.deallocate() }
        for i in 0..<(n * nb) { sums[i] = Vector.sum(x + i * 32, 32) }

        // split every matrix into row ranges of about equal work; the pieces run on all cores
        let totalRows = jobs.reduce(0) { $0 + $1.0.rows }
        let piece = Swift.max(64, totalRows / 8)
        var pieces: [(job: Int, range: Range<Int>)] = []
        for (j, job) in jobs.enumerated() {
            var r = 0
            while r < job.0.rows { pieces.append((j, r..<Swift.min(job.0.rows, r + piece))); r += piece }
        }
        let work = pieces
        let xp = SendablePointer(UnsafeMutablePointer(mutating: x)), sp = SendablePointer(sums)
        let outs = jobs.map { SendablePointer($0.1) }, mats = jobs.map(\.0)
        ParallelFor.shared.run(work.count) { p in
            let (j, range) = work[p]
            let m = mats[j]
            func x(_ i: Int) -> UnsafePointer<SIMD8<Float>> {
                UnsafeRawPointer(xp.pointer + i * cols).assumingMemoryBound(to: SIMD8<Float>.self)
            }
            // activation rows four at a time (each weight block widened once for all four), then one by one
            var i = 0
            while i + 4 <= n {
                let o = outs[j].pointer + i * m.rows
                let outs4 = (o, o + m.rows, o + 2 * m.rows, o + 3 * m.rows)
                if m.type == .q4_1 {
                    m.rowsQ4_1(out: outs4, x: (x(i), x(i + 1), x(i + 2), x(i + 3)), blockSums: sp.pointer + i * nb, range: range)
                } else {
                    m.rowsQ8_0(out: outs4, x: (x(i), x(i + 1), x(i + 2), x(i + 3)), range: range)
                }
                i += 4
            }
            for i in i..<n {
                let oi = outs[j].pointer + i * m.rows
                if m.type == .q4_1 {
                    m.rowsQ4_1(out: oi, x: x(i), blockSums: sp.pointer + i * nb, range: range)
                } else {
                    m.rowsQ8_0(out: oi, x: x(i), range: range)
                }
            }
        }
    }

    typealias Four<T> = (T, T, T, T)

    /// `rowsQ4_1` for four activation rows at once: the same operations in the same order for
    /// each row (so each result is bit for bit what the one-row kernel gives), with every block
    /// widened once instead of four times.
    fileprivate func rowsQ4_1(out: Four<UnsafeMutablePointer<Float>>, x: Four<UnsafePointer<SIMD8<Float>>>,
                              blockSums: UnsafePointer<Float>, range: Range<Int>) {
        let nb = cols / 32
        let q = quants.assumingMemoryBound(to: SIMD8<UInt8>.self)
        let sixteenth = SIMD8<Float>(repeating: 0.0625), sixteen = SIMD8<Float>(repeating: 16)
        for r in range {
            let w = q + r * nb * 2, d = scales + r * nb, m = mins! + r * nb
            var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>(), acc2 = SIMD8<Float>(), acc3 = SIMD8<Float>()
            for b in 0..<nb {
                let v0 = SIMD8<Float>(w[2 * b]), v1 = SIMD8<Float>(w[2 * b + 1])
                let hi0 = (v0 * sixteenth).rounded(.down), hi1 = (v1 * sixteenth).rounded(.down)
                let lo0 = v0 - sixteen * hi0, lo1 = v1 - sixteen * hi1
                let db = SIMD8<Float>(repeating: d[b])
                @inline(__always) func dot(_ xr: UnsafePointer<SIMD8<Float>>) -> SIMD8<Float> {
                    var a = lo0 * xr[4 * b]
                    a = a.addingProduct(lo1, xr[4 * b + 1])
                    a = a.addingProduct(hi0, xr[4 * b + 2])
                    return a.addingProduct(hi1, xr[4 * b + 3])
                }
                acc0 = acc0.addingProduct(dot(x.0), db)
                acc1 = acc1.addingProduct(dot(x.1), db)
                acc2 = acc2.addingProduct(dot(x.2), db)
                acc3 = acc3.addingProduct(dot(x.3), db)
            }
            var min0: Float = 0, min1: Float = 0, min2: Float = 0, min3: Float = 0
            for b in 0..<nb {
                min0 += m[b] * blockSums[b]
                min1 += m[b] * blockSums[nb + b]
                min2 += m[b] * blockSums[2 * nb + b]
                min3 += m[b] * blockSums[3 * nb + b]
            }
            out.0[r] = acc0.sum() + min0
            out.1[r] = acc1.sum() + min1
            out.2[r] = acc2.sum() + min2
            out.3[r] = acc3.sum() + min3
        }
    }

    /// `rowsQ8_0` for four activation rows at once (bit for bit the one-row results).
    fileprivate func rowsQ8_0(out: Four<UnsafeMutablePointer<Float>>, x: Four<UnsafePointer<SIMD8<Float>>>, range: Range<Int>) {
        let nb = cols / 32
        let q = UnsafeRawPointer(quants).assumingMemoryBound(to: SIMD8<Int8>.self)
        for r in range {
            let w = q + r * cols / 8, d = scales + r * nb
            var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>(), acc2 = SIMD8<Float>(), acc3 = SIMD8<Float>()
            for b in 0..<nb {
                let w0 = SIMD8<Float>(w[4 * b]), w1 = SIMD8<Float>(w[4 * b + 1]), w2 = SIMD8<Float>(w[4 * b + 2]), w3 = SIMD8<Float>(w[4 * b + 3])
                let db = SIMD8<Float>(repeating: d[b])
                @inline(__always) func dot(_ xr: UnsafePointer<SIMD8<Float>>) -> SIMD8<Float> {
                    var a = w0 * xr[4 * b]
                    a = a.addingProduct(w1, xr[4 * b + 1])
                    a = a.addingProduct(w2, xr[4 * b + 2])
                    return a.addingProduct(w3, xr[4 * b + 3])
                }
                acc0 = acc0.addingProduct(dot(x.0), db)
                acc1 = acc1.addingProduct(dot(x.1), db)
                acc2 = acc2.addingProduct(dot(x.2), db)
                acc3 = acc3.addingProduct(dot(x.3), db)
            }
            out.0[r] = acc0.sum()
            out.1[r] = acc1.sum()
            out.2[r] = acc2.sum()
            out.3[r] = acc3.sum()
        }
    }

    fileprivate func rowsQ4_1(out: UnsafeMutablePointer<Float>, x: UnsafePointer<SIMD8<Float>>, blockSums: UnsafePointer<Float>, range: Range<Int>) {
        let nb = cols / 32
        let q = quants.assumingMemoryBound(to: SIMD8<UInt8>.self)
        let sixteenth = SIMD8<Float>(repeating: 0.0625), sixteen = SIMD8<Float>(repeating: 16)
        for r in range {
            let w = q + r * nb * 2, d = scales + r * nb, m = mins! + r * nb
            var acc = SIMD8<Float>()
            for b in 0..<nb {
                let v0 = SIMD8<Float>(w[2 * b]), v1 = SIMD8<Float>(w[2 * b + 1])  // bytes 0-7, 8-15
                let hi0 = (v0 * sixteenth).rounded(.down), hi1 = (v1 * sixteenth).rounded(.down)
                let lo0 = v0 - sixteen * hi0, lo1 = v1 - sixteen * hi1
                var a = lo0 * x[4 * b]                       // columns 0-7
                a = a.addingProduct(lo1, x[4 * b + 1])       // columns 8-15
                a = a.addingProduct(hi0, x[4 * b + 2])       // columns 16-23
                a = a.addingProduct(hi1, x[4 * b + 3])       // columns 24-31
                acc = acc.addingProduct(a, SIMD8(repeating: d[b]))
            }
            var minTerm: Float = 0
            for b in 0..<nb { minTerm += m[b] * blockSums[b] }
            out[r] = acc.sum() + minTerm
        }
    }

    fileprivate func rowsQ8_0(out: UnsafeMutablePointer<Float>, x: UnsafePointer<SIMD8<Float>>, range: Range<Int>) {
        let nb = cols / 32
        let q = UnsafeRawPointer(quants).assumingMemoryBound(to: SIMD8<Int8>.self)
        for r in range {
            let w = q + r * cols / 8, d = scales + r * nb
            var acc = SIMD8<Float>()
            for b in 0..<nb {
                var a = SIMD8<Float>(w[4 * b]) * x[4 * b]
                a = a.addingProduct(SIMD8<Float>(w[4 * b + 1]), x[4 * b + 1])
                a = a.addingProduct(SIMD8<Float>(w[4 * b + 2]), x[4 * b + 2])
                a = a.addingProduct(SIMD8<Float>(w[4 * b + 3]), x[4 * b + 3])
                acc = acc.addingProduct(a, SIMD8(repeating: d[b]))
            }
            out[r] = acc.sum()
        }
    }
}
