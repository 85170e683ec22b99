// Conversions between Float and the 16-bit storage types, written out bit by bit so that they
// behave the same on every platform (Float16 is missing on Intel Macs) and round to nearest,
// ties to even.

/// Conversions between `Float` and the 16-bit encodings (binary16 and bfloat16) that GGUF files,
/// safetensors files and cartridge payloads store.
public enum HalfPrecision {
    /// The binary16 bits nearest to `x` (ties to even). Values of magnitude 65520 and above
    /// become infinity; NaN stays NaN (quiet, sign kept).
    @inline(__always)
    public static func f16Bits(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        let sign = UInt16(truncatingIfNeeded: (bits >> 16) & 0x8000)
        let exponent = Int((bits >> 23) & 0xFF)
        var mantissa = bits & 0x7F_FFFF
        if exponent == 0xFF {  // infinity or NaN
            if mantissa == 0 { return sign | 0x7C00 }
            return sign | 0x7E00 | UInt16(truncatingIfNeeded: mantissa >> 13)
        }
        let e = exponent - 127 + 15  // biased binary16 exponent
        if e >= 31 { return sign | 0x7C00 }  // |x| >= 2^16: beyond the largest finite half
        if e <= 0 {
            // subnormal half (or zero): value = mantissa24 · 2^(exponent-150) = half · 2^-24
            if e < -10 { return sign }  // |x| < 2^-25 rounds to zero
            mantissa |= 0x80_0000
            let shift = UInt32(14 - e)  // 14...24
            var half = mantissa >> shift
            let rest = mantissa & ((1 << shift) - 1)
            let halfway: UInt32 = 1 << (shift - 1)
            if rest > halfway || (rest == halfway && half & 1 == 1) { half += 1 }
            return sign | UInt16(truncatingIfNeeded: half)  // a carry makes the smallest normal
        }
        var half = UInt32(e) << 10 | mantissa >> 13
        let rest = mantissa & 0x1FFF
        if rest > 0x1000 || (rest == 0x1000 && half & 1 == 1) { half += 1 }  // a carry may reach infinity
        return sign | UInt16(truncatingIfNeeded: half)
    }

    /// The value of binary16 bits (exact).
    @inline(__always)
    public static func float(f16 h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = UInt32((h >> 10) & 0x1F)
        var mantissa = UInt32(h & 0x3FF)
        if exponent == 0x1F { return Float(bitPattern: sign | 0x7F80_0000 | mantissa << 13) }
        if exponent == 0 {
            if mantissa == 0 { return Float(bitPattern: sign) }
            // subnormal: normalize
            var e: Int32 = 1
            while mantissa & 0x400 == 0 {
                mantissa <<= 1
                e -= 1
            }
            mantissa &= 0x3FF
            return Float(bitPattern: sign | UInt32(e + (127 - 15)) << 23 | mantissa << 13)
        }
        return Float(bitPattern: sign | (exponent + (127 - 15)) << 23 | mantissa << 13)
    }

    /// The bfloat16 bits nearest to `x` (ties to even). NaN stays NaN (quiet, sign kept).
    @inline(__always)
    public static func bf16Bits(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        if x.isNaN { return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040 }
        let rounding: UInt32 = 0x7FFF + ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)  // a carry may reach infinity
    }

    /// The value of bfloat16 bits (exact).
    @inline(__always)
    public static func float(bf16 h: UInt16) -> Float {
        Float(bitPattern: UInt32(h) << 16)
    }
}
