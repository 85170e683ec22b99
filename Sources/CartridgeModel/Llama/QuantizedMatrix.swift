import CartridgeKernels
import Foundation

/// A weight matrix kept in its file's block format (Q8_0 or Q4_1), for matrix-vector products
/// that read 4-7x fewer bytes than f32 weights. Used when decoding a few rows at a time.
///
/// Each output row is dequantized block by block inside the dot product; the activations stay f32,
/// so results match the f32 path up to summation order.
public final class QuantizedMatrix: @unchecked Sendable {
    /// Largest number of activation rows for which this path beats sgemm on f32 weights.
    public static let maxRows = 4
    public let type: GGMLType
    public let rows: Int
    public let cols: Int
    /// rows * (cols / 32) blocks, owned (copied out of the file so they are aligned and resident)
    let blocks: UnsafeMutableRawPointer
    let rowBytes: Int

    /// Returns nil for types without a fast kernel.
    public init?(type: GGMLType, data: UnsafeRawBufferPointer, rows: Int, cols: Int) {
        guard type == .q8_0 || type == .q4_1, cols % 32 == 0 else { return nil }
        self.type = type
        self.rows = rows
        self.cols = cols
        rowBytes = cols / 32 * type.blockBytes
        precondition(data.count == rowBytes * rows)
        blocks = UnsafeMutableRawPointer.allocate(byteCount: data.count, alignment: 64)
        blocks.copyMemory(from: data.baseAddress!, byteCount: data.count)
    }

    deinit { blocks.deallocate() }

    /// out (n, rows) = x (n, cols) W^T, for n <= maxRows
    public func multiply(out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, rows n: Int) {
        let chunks = 8
        let perChunk = (rows + chunks - 1) / chunks
        let xs = SendablePointer(UnsafeMutablePointer(mutating: x)), os = SendablePointer(out)
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            let lo = c * perChunk, hi = min(rows, lo + perChunk)
            if lo >= hi { return }
            let xp = UnsafePointer(xs.pointer), os = os.pointer
            switch type {
            case .q8_0: multiplyQ8_0(out: os, x: xp, n: n, rowRange: lo..<hi)
            default: multiplyQ4_1(out: os, x: xp, n: n, rowRange: lo..<hi)
            }
        }
    }

    @inline(__always)
    private func loadF16(_ p: UnsafeRawPointer) -> Float {
        Float(Float16(bitPattern: p.loadUnaligned(as: UInt16.self)))
    }

    private func multiplyQ8_0(out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, n: Int, rowRange: Range<Int>) {
        let nb = cols / 32
        for r in rowRange {
            let row = UnsafeRawPointer(blocks + r * rowBytes)
            for i in 0..<n {
                let xr = UnsafeRawPointer(x + i * cols)
                var acc = SIMD16<Float>()
                for b in 0..<nb {
                    let blk = row + b * 34
                    let d = loadF16(blk)
                    let qs = (blk + 2).loadUnaligned(as: SIMD32<Int8>.self)
                    let lo = SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: qs.lowHalf))
                    let hi = SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: qs.highHalf))
                    let x0 = (xr + b * 128).loadUnaligned(as: SIMD16<Float>.self)
                    let x1 = (xr + b * 128 + 64).loadUnaligned(as: SIMD16<Float>.self)
                    acc += d * (lo * x0 + hi * x1)
                }
                out[i * rows + r] = acc.sum()
            }
        }
    }

    private func multiplyQ4_1(out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, n: Int, rowRange: Range<Int>) {
        let nb = cols / 32
        for r in rowRange {
            let row = UnsafeRawPointer(blocks + r * rowBytes)
            for i in 0..<n {
                let xr = UnsafeRawPointer(x + i * cols)
                var acc = SIMD16<Float>()
                var accM = SIMD16<Float>()
                for b in 0..<nb {
                    let blk = row + b * 20
                    let d = loadF16(blk), m = loadF16(blk + 2)
                    let qs = (blk + 4).loadUnaligned(as: SIMD16<UInt8>.self)
                    let lo = SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: qs & 0x0F))
                    let hi = SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: qs &>> 4))
                    let x0 = (xr + b * 128).loadUnaligned(as: SIMD16<Float>.self)
                    let x1 = (xr + b * 128 + 64).loadUnaligned(as: SIMD16<Float>.self)
                    acc += d * (lo * x0 + hi * x1)
                    accM += m * (x0 + x1)
                }
                out[i * rows + r] = (acc + accM).sum()
            }
        }
    }
}
