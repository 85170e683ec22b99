import CartridgeKernels
import XCTest

final class HalfPrecisionTests: XCTestCase {
    func testF16RoundsToNearestEvenOnHandCheckedValues() {
        let cases: [(Float, UInt16)] = [
            (1, 0x3C00), (-2, 0xC000), (0.1, 0x2E66), (0, 0x0000), (-0.0, 0x8000),
            (65504, 0x7BFF),                       // largest finite half
            (65519, 0x7BFF),                       // just below the halfway point to 65536
            (65520, 0x7C00),                       // halfway: ties to even (0x7C00) = infinity
            (1 + 0x1p-11, 0x3C00),                 // halfway between 0x3C00 and 0x3C01: even is 0x3C00
            (1 + 3 * 0x1p-11, 0x3C02),             // halfway between 0x3C01 and 0x3C02: even is 0x3C02
            (1 + 0x1p-11 + 0x1p-20, 0x3C01),       // just above halfway rounds up
            (0x1p-14, 0x0400),                     // smallest normal
            (0x1p-14 - 0x1p-25, 0x0400),           // halfway between largest subnormal 0x03FF and 0x0400
            (0x1p-24, 0x0001),                     // smallest subnormal
            (0x1p-25, 0x0000),                     // halfway between 0 and 0x0001: even is 0
            (3 * 0x1p-25, 0x0002),                 // halfway between 0x0001 and 0x0002
            (0x1p-25 + 0x1p-35, 0x0001),           // just above halfway
            (1e-30, 0x0000), (1e10, 0x7C00), (-1e10, 0xFC00),
            (Float.infinity, 0x7C00), (-Float.infinity, 0xFC00),
        ]
        for (x, expected) in cases {
            XCTAssertEqual(HalfPrecision.f16Bits(x), expected, "f16 of \(x)")
        }
        XCTAssertTrue(HalfPrecision.float(f16: HalfPrecision.f16Bits(.nan)).isNaN)
    }

    func testF16DecodesExactly() {
        XCTAssertEqual(HalfPrecision.float(f16: 0x3555), 0.333251953125)
        XCTAssertEqual(HalfPrecision.float(f16: 0x0001), 0x1p-24)
        XCTAssertEqual(HalfPrecision.float(f16: 0x03FF), 1023 * 0x1p-24)
        XCTAssertEqual(HalfPrecision.float(f16: 0x7BFF), 65504)
        XCTAssertEqual(HalfPrecision.float(f16: 0xFC00), -.infinity)
        XCTAssertEqual(HalfPrecision.float(f16: 0x8000).bitPattern, (-0.0 as Float).bitPattern)
        XCTAssertTrue(HalfPrecision.float(f16: 0x7E00).isNaN)
    }

    func testEveryF16ValueSurvivesARoundTrip() {
        for h in 0...UInt16.max {
            let x = HalfPrecision.float(f16: h)
            if x.isNaN { continue }
            XCTAssertEqual(HalfPrecision.f16Bits(x), h, "bits \(String(h, radix: 16))")
        }
    }

    #if !(os(macOS) && arch(x86_64))
    func testF16AgreesWithTheStandardLibraryOnRandomFloats() {
        var rng = SplitMix64(seed: 7)
        var mismatches = 0
        for i in 0..<200_000 {
            let x: Float
            switch i % 3 {
            case 0:  // any bit pattern: every magnitude, infinities included
                x = Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &rng))
            case 1:  // the range where halves live
                let scale = Float(sign: .plus, exponent: Int.random(in: -26...17, using: &rng), significand: 1)
                x = Float.random(in: -1...1, using: &rng) * scale
            default:  // exactly halfway between two neighbouring halves
                let h = UInt16.random(in: 0..<0x7BFF, using: &rng) | (Bool.random(using: &rng) ? 0x8000 : 0)
                x = Float((Double(HalfPrecision.float(f16: h)) + Double(HalfPrecision.float(f16: h + 1))) / 2)
            }
            if x.isNaN { continue }
            if HalfPrecision.f16Bits(x) != Float16(x).bitPattern { mismatches += 1 }
        }
        XCTAssertEqual(mismatches, 0)
    }
    #endif

    func testBF16RoundsToNearestEvenOnHandCheckedValues() {
        let cases: [(Float, UInt16)] = [
            (1, 0x3F80), (-2, 0xC000), (0, 0x0000), (-0.0, 0x8000),
            (1 + 0x1p-8, 0x3F80),                  // halfway between 0x3F80 and 0x3F81: even is 0x3F80
            (1 + 3 * 0x1p-8, 0x3F82),              // halfway between 0x3F81 and 0x3F82: even is 0x3F82
            (1 + 0x1p-8 + 0x1p-20, 0x3F81),        // just above halfway
            (Float.pi, 0x4049),                    // 3.14159274 -> 3.140625
            (Float.greatestFiniteMagnitude, 0x7F80), // rounds past the largest bf16 to infinity
            (Float.infinity, 0x7F80), (-Float.infinity, 0xFF80),
        ]
        for (x, expected) in cases {
            XCTAssertEqual(HalfPrecision.bf16Bits(x), expected, "bf16 of \(x)")
        }
        XCTAssertEqual(HalfPrecision.float(bf16: 0x4049), 3.140625)
        XCTAssertTrue(HalfPrecision.float(bf16: HalfPrecision.bf16Bits(.nan)).isNaN)
        XCTAssertTrue(HalfPrecision.float(bf16: HalfPrecision.bf16Bits(Float(bitPattern: 0x7F80_0001))).isNaN, "a NaN with low payload bits must not become infinity")
    }

    func testEveryBF16ValueSurvivesARoundTrip() {
        for h in 0...UInt16.max {
            let x = HalfPrecision.float(bf16: h)
            if x.isNaN { continue }
            XCTAssertEqual(HalfPrecision.bf16Bits(x), h)
        }
    }

    func testF16AndBF16DecodeExactlyForEveryBitPattern() {
        XCTAssertEqual(HalfPrecision.float(f16: 0x3C00), 1)
        XCTAssertEqual(HalfPrecision.float(f16: 0xC000), -2)
        XCTAssertEqual(HalfPrecision.float(f16: 0x7BFF), 65504)
        XCTAssertEqual(HalfPrecision.float(f16: 0x0001), 0x1p-24)
        XCTAssertEqual(HalfPrecision.float(f16: 0x8000).bitPattern, (-0.0 as Float).bitPattern)
        XCTAssertEqual(HalfPrecision.float(f16: 0x7C00), .infinity)
        XCTAssertTrue(HalfPrecision.float(f16: 0x7E00).isNaN)
        XCTAssertEqual(HalfPrecision.float(bf16: 0x3F80), 1)
        XCTAssertEqual(HalfPrecision.float(bf16: 0xC0A0), -5)
        #if !(os(macOS) && arch(x86_64))
        for bits in 0...UInt16.max {
            let want = Float(Float16(bitPattern: bits))
            let got = HalfPrecision.float(f16: bits)
            if want.isNaN {
                XCTAssertTrue(got.isNaN, "f16 \(bits)")
            } else {
                XCTAssertEqual(got.bitPattern, want.bitPattern, "f16 \(bits)")
            }
        }
        #endif
    }
}
