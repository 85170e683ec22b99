import CartridgeKernels

/// Why a tensor could not be dequantized.
public enum DequantizeError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The element type has no dequantizer in this engine.
    case unsupportedType(GGMLType)
    /// The value count is negative or not a whole number of blocks.
    case invalidCount(type: GGMLType, count: Int)
    /// A buffer is smaller than `count` values of the type need.
    case bufferTooSmall(type: GGMLType, count: Int, neededBytes: Int, availableBytes: Int)
    /// The destination holds fewer than `count` floats.
    case destinationTooSmall(count: Int, capacity: Int)

    public var description: String {
        switch self {
        case .unsupportedType(let type):
            let supported = GGMLType.allCases.filter(\.isSupported).map(\.name).joined(separator: ", ")
            return "Tensor type \(type.name) (ggml type \(type.rawValue)) is not supported; "
                + "use a model quantized as one of: \(supported)."
        case .invalidCount(let type, let count):
            return "Cannot dequantize \(count) values of type \(type.name): the count must be a "
                + "non-negative multiple of its block size \(type.blockSize); the tensor shape or file is likely corrupt."
        case .bufferTooSmall(let type, let count, let needed, let available):
            return "Cannot dequantize \(count) values of type \(type.name): they need \(needed) bytes "
                + "but only \(available) are available; the file is likely truncated or corrupt."
        case .destinationTooSmall(let count, let capacity):
            return "Cannot dequantize \(count) values into a buffer of \(capacity) floats."
        }
    }
}

/// Conversion of ggml tensor data (plain floats and quantized blocks) to `Float`.
///
/// Block layouts follow ggml (and gguf-py, which the test fixtures come from). All multi-byte
/// fields are little-endian and read unaligned, because GGUF only aligns whole tensors.
/// Results are bit-identical to `gguf.quants.dequantize`.
public enum Dequantize {
    /// Converts `count` values of `type` stored at `source` to `Float`s at `destination`.
    ///
    /// - Parameters:
    ///   - type: the tensor's element type; must be `isSupported`.
    ///   - source: the raw, little-endian tensor data; must hold `byteCount(type, count:)` bytes.
    ///   - count: number of values; a multiple of `type.blockSize`.
    ///   - destination: room for `count` floats.
    /// - Throws: `DequantizeError.unsupportedType` or `.invalidCount`.
    public static func run(
        _ type: GGMLType, from source: UnsafeRawPointer, count: Int,
        into destination: UnsafeMutablePointer<Float>
    ) throws(DequantizeError) {
        guard type.isSupported else { throw .unsupportedType(type) }
        guard count >= 0, count % type.blockSize == 0 else { throw .invalidCount(type: type, count: count) }
        let blocks = count / type.blockSize
        switch type {
        case .f32:
            for i in 0..<count {
                destination[i] = Float(bitPattern: readU32(source, 4 * i))
            }
        case .f16:
            for i in 0..<count {
                destination[i] = HalfPrecision.float(f16: readU16(source, 2 * i))
            }
        case .bf16:
            for i in 0..<count {
                destination[i] = HalfPrecision.float(bf16: readU16(source, 2 * i))
            }
        case .q8_0: dequantizeQ8_0(source, blocks, destination)
        case .q4_0: dequantizeQ4_0(source, blocks, destination)
        case .q4_1: dequantizeQ4_1(source, blocks, destination)
        case .q4_K: dequantizeQ4_K(source, blocks, destination)
        case .q5_K: dequantizeQ5_K(source, blocks, destination)
        case .q6_K: dequantizeQ6_K(source, blocks, destination)
        default: throw .unsupportedType(type)
        }
    }

    /// Bounds-checked variant of `run`: dequantizes `count` values from `source` into the start
    /// of `destination`, after checking that both buffers are large enough.
    ///
    /// - Throws: `DequantizeError.unsupportedType`, `.invalidCount`, `.bufferTooSmall` or
    ///   `.destinationTooSmall`.
    public static func run(
        _ type: GGMLType, from source: UnsafeRawBufferPointer, count: Int,
        into destination: UnsafeMutableBufferPointer<Float>
    ) throws(DequantizeError) {
        guard type.isSupported else { throw .unsupportedType(type) }
        let needed = try byteCount(type, count: count)
        guard source.count >= needed else {
            throw .bufferTooSmall(type: type, count: count, neededBytes: needed, availableBytes: source.count)
        }
        guard destination.count >= count else {
            throw .destinationTooSmall(count: count, capacity: destination.count)
        }
        guard count > 0, let src = source.baseAddress, let dst = destination.baseAddress else { return }
        try run(type, from: src, count: count, into: dst)
    }

    /// Number of bytes `count` values of `type` occupy (whole blocks).
    ///
    /// - Throws: `DequantizeError.invalidCount` if `count` is negative or not a multiple of the
    ///   block size (or the size overflows).
    public static func byteCount(_ type: GGMLType, count: Int) throws(DequantizeError) -> Int {
        guard count >= 0, count % type.blockSize == 0 else { throw .invalidCount(type: type, count: count) }
        let (bytes, overflow) = (count / type.blockSize).multipliedReportingOverflow(by: type.blockBytes)
        guard !overflow else { throw .invalidCount(type: type, count: count) }
        return bytes
    }

    // MARK: - Byte access

    @inline(__always)
    private static func readU8(_ p: UnsafeRawPointer, _ offset: Int) -> UInt8 {
        p.load(fromByteOffset: offset, as: UInt8.self)
    }

    @inline(__always)
    private static func readU16(_ p: UnsafeRawPointer, _ offset: Int) -> UInt16 {
        UInt16(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inline(__always)
    private static func readU32(_ p: UnsafeRawPointer, _ offset: Int) -> UInt32 {
        UInt32(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    @inline(__always)
    private static func readF16(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
        HalfPrecision.float(f16: readU16(p, offset))
    }

    // MARK: - 32-value blocks

    /// Q8_0 block (34 bytes): d (f16), 32 x int8 q. Value = q * d.
    private static func dequantizeQ8_0(_ src: UnsafeRawPointer, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let block = src + b * 34
            let out = dst + b * 32
            let d = readF16(block, 0)
            for i in 0..<32 {
                out[i] = Float(Int8(bitPattern: readU8(block, 2 + i))) * d
            }
        }
    }

    /// Q4_0 block (18 bytes): d (f16), 16 bytes of nibbles. Low nibbles are values 0..15,
    /// high nibbles values 16..31. Value = (q - 8) * d.
    private static func dequantizeQ4_0(_ src: UnsafeRawPointer, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let block = src + b * 18
            let out = dst + b * 32
            let d = readF16(block, 0)
            for i in 0..<16 {
                let byte = readU8(block, 2 + i)
                out[i] = Float(Int32(byte & 0x0F) - 8) * d
                out[i + 16] = Float(Int32(byte >> 4) - 8) * d
            }
        }
    }

    /// Q4_1 block (20 bytes): d (f16), m (f16), 16 bytes of nibbles (as Q4_0). Value = d * q + m.
    private static func dequantizeQ4_1(_ src: UnsafeRawPointer, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let block = src + b * 20
            let out = dst + b * 32
            let d = readF16(block, 0)
            let m = readF16(block, 2)
            for i in 0..<16 {
                let byte = readU8(block, 4 + i)
                out[i] = d * Float(byte & 0x0F) + m
                out[i + 16] = d * Float(byte >> 4) + m
            }
        }
    }

    // MARK: - K-quants (256-value super-blocks)

    /// Unpacks the 6-bit scale and min of sub-block `j` (0..<8) from the 12 packed bytes at
    /// `scales`: bytes 0..3 hold scales 0..3 (low 6 bits) and the top 2 bits of scales 4..7,
    /// bytes 4..7 likewise for the mins, bytes 8..11 the low 4 bits of scale/min 4..7.
    @inline(__always)
    private static func scaleMin(_ scales: UnsafeRawPointer, _ j: Int) -> (scale: UInt8, min: UInt8) {
        if j < 4 {
            return (readU8(scales, j) & 0x3F, readU8(scales, j + 4) & 0x3F)
        }
        let low = readU8(scales, j + 4)
        let scale = (low & 0x0F) | ((readU8(scales, j - 4) >> 6) << 4)
        let min = (low >> 4) | ((readU8(scales, j) >> 6) << 4)
        return (scale, min)
    }

    /// Q4_K block (144 bytes): d (f16), dmin (f16), 12 bytes of packed 6-bit scales/mins,
    /// 128 bytes of nibbles. Eight 32-value sub-blocks; each 32-byte chunk of nibbles holds two
    /// sub-blocks (low nibbles first). Value = (d * scale) * q - (dmin * min).
    private static func dequantizeQ4_K(_ src: UnsafeRawPointer, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let block = src + b * 144
            let out = dst + b * 256
            let d = readF16(block, 0)
            let dmin = readF16(block, 2)
            let scales = block + 4
            let qs = block + 16
            for chunk in 0..<4 {
                let (sc1, m1) = scaleMin(scales, 2 * chunk)
                let (sc2, m2) = scaleMin(scales, 2 * chunk + 1)
                let d1 = d * Float(sc1), min1 = dmin * Float(m1)
                let d2 = d * Float(sc2), min2 = dmin * Float(m2)
                let q = qs + 32 * chunk
                let o = out + 64 * chunk
                for l in 0..<32 {
                    let byte = readU8(q, l)
                    o[l] = d1 * Float(byte & 0x0F) - min1
                    o[l + 32] = d2 * Float(byte >> 4) - min2
                }
            }
        }
    }

    /// Q5_K block (176 bytes): d (f16), dmin (f16), 12 bytes of scales/mins (as Q4_K),
    /// 32 bytes qh (bit j of byte l is the 5th bit of value l of sub-block j), 128 bytes of
    /// nibbles (as Q4_K). Value = (d * scale) * q - (dmin * min).
    private static func dequantizeQ5_K(_ src: UnsafeRawPointer, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let block = src + b * 176
            let out = dst + b * 256
            let d = readF16(block, 0)
            let dmin = readF16(block, 2)
            let scales = block + 4
            let qh = block + 16
            let qs = block + 48
            for chunk in 0..<4 {
                let (sc1, m1) = scaleMin(scales, 2 * chunk)
                let (sc2, m2) = scaleMin(scales, 2 * chunk + 1)
                let d1 = d * Float(sc1), min1 = dmin * Float(m1)
                let d2 = d * Float(sc2), min2 = dmin * Float(m2)
                let shift1 = UInt8(2 * chunk), shift2 = UInt8(2 * chunk + 1)
                let q = qs + 32 * chunk
                let o = out + 64 * chunk
                for l in 0..<32 {
                    let byte = readU8(q, l)
                    let high = readU8(qh, l)
                    let q1 = (byte & 0x0F) | (((high >> shift1) & 1) << 4)
                    let q2 = (byte >> 4) | (((high >> shift2) & 1) << 4)
                    o[l] = d1 * Float(q1) - min1
                    o[l + 32] = d2 * Float(q2) - min2
                }
            }
        }
    }

    /// Q6_K block (210 bytes): ql (128 bytes, low 4 bits), qh (64 bytes, high 2 bits),
    /// 16 int8 scales (one per 16 values), d (f16). Each 128-value half uses 64 ql bytes and
    /// 32 qh bytes. Value = (d * scale) * (q - 32).
    private static func dequantizeQ6_K(_ src: UnsafeRawPointer, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let block = src + b * 210
            let out = dst + b * 256
            let d = readF16(block, 208)
            for half in 0..<2 {
                let ql = block + 64 * half
                let qh = block + 128 + 32 * half
                let sc = block + 192 + 8 * half
                let o = out + 128 * half
                for s in 0..<2 {
                    // Scales are per 16 values: value index / 16 within the block.
                    let d1 = d * scale(sc, s), d2 = d * scale(sc, s + 2)
                    let d3 = d * scale(sc, s + 4), d4 = d * scale(sc, s + 6)
                    for l in (16 * s)..<(16 * s + 16) {
                        let low = readU8(ql, l), low2 = readU8(ql, l + 32), high = readU8(qh, l)
                        let q1 = Int32((low & 0x0F) | ((high & 0x03) << 4)) - 32
                        let q2 = Int32((low2 & 0x0F) | (((high >> 2) & 0x03) << 4)) - 32
                        let q3 = Int32((low >> 4) | (((high >> 4) & 0x03) << 4)) - 32
                        let q4 = Int32((low2 >> 4) | (((high >> 6) & 0x03) << 4)) - 32
                        o[l] = d1 * Float(q1)
                        o[l + 32] = d2 * Float(q2)
                        o[l + 64] = d3 * Float(q3)
                        o[l + 96] = d4 * Float(q4)
                    }
                }
            }
        }
    }

    @inline(__always)
    private static func scale(_ scales: UnsafeRawPointer, _ i: Int) -> Float {
        Float(Int8(bitPattern: readU8(scales, i)))
    }
}
