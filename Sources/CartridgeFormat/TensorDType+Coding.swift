// Storing tensor values as a TensorDType and reading them back (docs/cart-format.md, §7). This
// is the one place that knows each dtype's bytes: the writer, the reader and `roundTripped` all
// use it.
//
// q8_0 and q4_0 are GGUF's block types: each block of 32 consecutive values is an f16 scale d
// followed by the quantized values.
//   q8_0 (34 bytes): d, then 32 int8 q;            x = q · d,       d = max|x| / 127
//   q4_0 (18 bytes): d, then 16 bytes of nibbles;  x = (q - 8) · d, d = m / -8, m the value of
//                    largest magnitude; value j is the low nibble of byte j, value j + 16 its high nibble
// The scale is rounded to the f16 of equal or larger magnitude, and q is computed from that
// stored scale, so |q| ≤ 127 (q8_0), q ≥ 0 (q4_0), and every value whose q is not clamped comes
// back within |d|/2.

import CartridgeKernels

extension TensorDType {
    /// `values` stored as this dtype and read back: exactly what writing and reading a cartridge
    /// gives. The float types round each value on its own; `q8_0` and `q4_0` quantize each block
    /// of 32 consecutive values with its own scale.
    /// - Throws: `CartError.invalidCartridge` when `values.count` is not a whole number of blocks,
    ///   or a value is not finite or too large for this dtype.
    public func roundTripped(_ values: [Float]) throws -> [Float] {
        guard let bytes = byteCount(elements: values.count) else {
            throw CartError.invalidCartridge(reason: "\(values.count) values are not a whole number of \(rawValue) blocks of \(blockLength) values")
        }
        if let i = values.firstIndex(where: { !$0.isFinite }) {
            throw CartError.invalidCartridge(reason: "value \(i) is \(values[i]); every value must be finite")
        }
        var raw = [UInt8](repeating: 0, count: bytes)
        let tooLarge = raw.withUnsafeMutableBytes { out in
            values.withUnsafeBufferPointer { encode($0, into: out, at: 0) }
        }
        if let i = tooLarge { throw CartError.invalidCartridge(reason: tooLargeReason("value \(i) = \(values[i])")) }
        var back = [Float](repeating: 0, count: values.count)
        let problem = raw.withUnsafeBytes { input in
            back.withUnsafeMutableBufferPointer { decode(input, at: 0, into: $0) }
        }
        invariant(problem == nil, "finite values encoded as \(rawValue) decoded to \(problem ?? "")")
        return back
    }

    /// Why a value cannot be stored, with what to do; `value` names it (e.g. `keys[7] = 70000.0`).
    func tooLargeReason(_ value: String) -> String {
        switch self {
        case .f32, .f16, .bf16:
            return "\(value) is too large for \(rawValue); write the cartridge as \(self == .f16 ? "bf16 or f32" : "f32")"
        case .q8_0, .q4_0:
            // the scale d = max|x| / 127 (q8_0) or / 8 (q4_0) must fit in f16
            let limit = 65504 * (self == .q8_0 ? 127 : 8)
            return "\(value) is too large for \(rawValue): its block's f16 scale would pass 65504 (|x| must be at most \(limit)); write the cartridge as bf16 or f32"
        }
    }

    /// Stores the finite values of `source` (a whole number of blocks) as this dtype at byte
    /// `offset` of `out`; returns the index of the first value too large for the dtype, or nil.
    func encode(_ source: UnsafeBufferPointer<Float>, into out: UnsafeMutableRawBufferPointer, at offset: Int) -> Int? {
        invariant(source.count % blockLength == 0 && offset + source.count / blockLength * blockBytes <= out.count)
        var overflow: Int?
        switch self {
        case .f32:
            for (i, v) in source.enumerated() {
                out.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: offset + 4 * i, as: UInt32.self)
            }
        case .f16:
            for (i, v) in source.enumerated() {
                let h = HalfPrecision.f16Bits(v)
                if h & 0x7FFF == 0x7C00 && overflow == nil { overflow = i }
                out.storeBytes(of: h.littleEndian, toByteOffset: offset + 2 * i, as: UInt16.self)
            }
        case .bf16:
            for (i, v) in source.enumerated() {
                let h = HalfPrecision.bf16Bits(v)
                if h & 0x7FFF == 0x7F80 && overflow == nil { overflow = i }
                out.storeBytes(of: h.littleEndian, toByteOffset: offset + 2 * i, as: UInt16.self)
            }
        case .q8_0, .q4_0:
            for b in 0..<(source.count / blockLength) {
                let block = UnsafeBufferPointer(rebasing: source[(b * blockLength)..<((b + 1) * blockLength)])
                let at = offset + b * blockBytes
                let bad = self == .q8_0 ? Self.encodeQ8_0(block, into: out, at: at) : Self.encodeQ4_0(block, into: out, at: at)
                if let i = bad, overflow == nil { overflow = b * blockLength + i }
            }
        }
        return overflow
    }

    /// Reads `out.count` values (a whole number of blocks) of this dtype at byte `offset` of
    /// `input`; returns what makes them unusable (a non-finite value or scale), or nil.
    func decode(_ input: UnsafeRawBufferPointer, at offset: Int, into out: UnsafeMutableBufferPointer<Float>) -> String? {
        invariant(out.count % blockLength == 0 && offset + out.count / blockLength * blockBytes <= input.count)
        switch self {
        case .f32, .f16, .bf16:
            var bad: Int?
            for i in 0..<out.count {
                let at = offset + blockBytes * i
                let v: Float
                if self == .f32 {
                    v = Float(bitPattern: UInt32(littleEndian: input.loadUnaligned(fromByteOffset: at, as: UInt32.self)))
                } else {
                    let h = UInt16(littleEndian: input.loadUnaligned(fromByteOffset: at, as: UInt16.self))
                    v = self == .f16 ? HalfPrecision.float(f16: h) : HalfPrecision.float(bf16: h)
                }
                if !v.isFinite && bad == nil { bad = i }
                out[i] = v
            }
            return bad.map { "a non-finite value at element \($0)" }
        case .q8_0, .q4_0:
            // a finite scale times a small integer is finite: only the scales need checking
            for b in 0..<(out.count / blockLength) {
                let at = offset + b * blockBytes
                let d = HalfPrecision.float(f16: UInt16(littleEndian: input.loadUnaligned(fromByteOffset: at, as: UInt16.self)))
                guard d.isFinite else {
                    return "a non-finite scale (\(d)) in block \(b) (elements \(b * blockLength)..<\((b + 1) * blockLength))"
                }
                let first = b * blockLength
                if self == .q8_0 {
                    for j in 0..<32 {
                        out[first + j] = Float(Int8(bitPattern: input[at + 2 + j])) * d
                    }
                } else {
                    for j in 0..<16 {
                        let byte = input[at + 2 + j]
                        out[first + j] = Float(Int(byte & 0x0F) - 8) * d
                        out[first + j + 16] = Float(Int(byte >> 4) - 8) * d
                    }
                }
            }
            return nil
        }
    }

    /// The f16 bits of a block scale: `d` rounded to the f16 of equal or larger magnitude, so
    /// that no value of the block is more than 127 (q8_0) or 8 (q4_0) scales away from zero.
    /// Infinite (exponent bits all ones) when `d` is too large for f16.
    private static func scaleBits(_ d: Float) -> UInt16 {
        let h = HalfPrecision.f16Bits(d)
        // f16 is sign and magnitude: the next larger magnitude is the next bit pattern
        return abs(HalfPrecision.float(f16: h)) < abs(d) ? h + 1 : h
    }

    /// The value of largest magnitude in `block` (the first one, on ties) and its index.
    private static func largest(_ block: UnsafeBufferPointer<Float>) -> (value: Float, index: Int) {
        var best: Float = 0, index = 0
        for (j, v) in block.enumerated() where abs(v) > abs(best) {
            best = v
            index = j
        }
        return (best, index)
    }

    /// One q8_0 block (32 finite values) at byte `at` of `out`; the index of the value that
    /// makes the scale overflow f16, or nil.
    private static func encodeQ8_0(_ block: UnsafeBufferPointer<Float>, into out: UnsafeMutableRawBufferPointer, at: Int) -> Int? {
        let (m, index) = largest(block)
        let bits = scaleBits(abs(m) / 127)
        guard bits & 0x7C00 != 0x7C00 else { return index }
        out.storeBytes(of: bits.littleEndian, toByteOffset: at, as: UInt16.self)
        let d = HalfPrecision.float(f16: bits)
        for (j, x) in block.enumerated() {
            // d ≥ max|x| / 127, so |x / d| ≤ 127; d is 0 only when every value is
            let q = d == 0 ? 0 : Int8(max(-127, min(127, (x / d).rounded())))
            out.storeBytes(of: UInt8(bitPattern: q), toByteOffset: at + 2 + j, as: UInt8.self)
        }
        return nil
    }

    /// One q4_0 block (32 finite values) at byte `at` of `out`; the index of the value that
    /// makes the scale overflow f16, or nil.
    private static func encodeQ4_0(_ block: UnsafeBufferPointer<Float>, into out: UnsafeMutableRawBufferPointer, at: Int) -> Int? {
        let (m, index) = largest(block)
        let bits = m == 0 ? 0 : scaleBits(m / -8)
        guard bits & 0x7C00 != 0x7C00 else { return index }
        out.storeBytes(of: bits.littleEndian, toByteOffset: at, as: UInt16.self)
        let d = HalfPrecision.float(f16: bits)
        // x / d lies in [-8, 8]: m maps to -8 (q = 0); values of the other sign beyond 7.5 |d| clamp to q = 15
        func nibble(_ x: Float) -> UInt8 { d == 0 ? 8 : UInt8(max(0, min(15, (x / d).rounded() + 8))) }
        for j in 0..<16 {
            out.storeBytes(of: nibble(block[j]) | nibble(block[j + 16]) << 4, toByteOffset: at + 2 + j, as: UInt8.self)
        }
        return nil
    }
}
