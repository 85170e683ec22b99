@testable import CartridgeFormat
import CartridgeKernels
import Foundation
import XCTest

/// Thousands of damaged files: each must give a typed `CartError`, never a crash, a hang, a
/// huge allocation or (worst) a cartridge with wrong tensors.
final class FuzzTests: XCTestCase {
    private var checked = 0
    private var kinds: [String: Int] = [:]
    private var directory: URL!

    override func setUpWithError() throws { directory = try Fixture.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    /// Decodes `bytes` (in memory, and from disk for every 25th case); fails unless both throw a CartError.
    private func expectFailure(_ bytes: [UInt8], _ what: @autoclosure () -> String, file: StaticString = #filePath, line: UInt = #line) {
        checked += 1
        let first: CartError
        do {
            _ = try CartFile.decode(bytes)
            return XCTFail("\(what()): damaged file was read without error", file: file, line: line)
        } catch let e as CartError {
            first = e
        } catch {
            return XCTFail("\(what()): untyped error \(error)", file: file, line: line)
        }
        // the summary skips the payload, so it may succeed only when the damage is there
        do {
            _ = try CartFile.decodeSummary(bytes)
            switch first {
            case .checksumMismatch(_, .payload), .corruptPayload: break
            default: XCTFail("\(what()): the summary read succeeded but the full read gave \(first)", file: file, line: line)
            }
        } catch is CartError {
        } catch {
            XCTFail("\(what()): untyped error from the summary \(error)", file: file, line: line)
        }
        kinds[Mirror(reflecting: first).children.first?.label ?? "\(first)", default: 0] += 1
        if checked % 25 == 0 {
            let url = directory.appendingPathComponent("m\(checked).cart")
            do {
                try Data(bytes).write(to: url)
                _ = try CartFile.read(from: url)
                XCTFail("\(what()): damaged file on disk was read without error", file: file, line: line)
            } catch is CartError {
            } catch {
                XCTFail("\(what()): untyped error from disk \(error)", file: file, line: line)
            }
            try? FileManager.default.removeItem(at: url)
        }
    }

    func testThousandsOfDamagedFilesAllGiveTypedErrors() throws {
        var rng = SplitMix64(seed: 2025)
        let start = Date()
        for dtype in TensorDType.allCases {
            // q8_0 and q4_0 need whole blocks of 32 values along headDim
            let headDim = dtype.isBlockQuantized ? 32 : 8
            let good = try CartFile.encode(Fixture.cartridge(dtype: dtype, headDim: headDim, seed: UInt64(dtype.headerCode)))
            XCTAssertNoThrow(try CartFile.decode(good))
            let n = good.count

            // 1. truncation at every length (this covers every header byte and more)
            for k in 0..<n {
                expectFailure(Array(good[0..<k]), "\(dtype) truncated to \(k)")
            }
            // 2. one bit flipped at every header byte, then random flips anywhere
            for i in 0..<192 {
                var b = good
                b[i] ^= 1 << UInt8(i % 8)
                expectFailure(b, "\(dtype) header byte \(i) flipped")
            }
            for _ in 0..<400 {
                var b = good
                let flips = Int.random(in: 1...4, using: &rng)
                for _ in 0..<flips { b[Int.random(in: 0..<n, using: &rng)] ^= 1 << UInt8.random(in: 0..<8, using: &rng) }
                if b == good { continue }
                expectFailure(b, "\(dtype) random bit flips")
            }
            // 3. header fields set to extreme values, with and without a valid header checksum
            let fields: [(Int, Int)] = [(8, 2), (10, 2), (12, 4), (48, 1), (49, 1), (50, 1), (52, 4), (56, 8), (64, 8), (72, 8), (80, 8), (88, 8)]
            for (offset, width) in fields {
                let maxValue: UInt64 = width == 8 ? .max : (1 << UInt64(8 * width)) - 1
                let values: [UInt64] = [0, 1, 47, 48, 191, 193, UInt64(n) - 1, UInt64(n) + 1, 1 << 31, maxValue, maxValue / 2,
                                        UInt64.random(in: 0...maxValue, using: &rng)]
                for v in Set(values.map { min($0, maxValue) }) {
                    var b = good
                    let before = b.readLE(offset, width)
                    b.writeLE(v, at: offset, width: width)
                    if v == before { continue }
                    expectFailure(b, "\(dtype) field \(offset) = \(v), old checksum")
                    resealHeader(&b)
                    if offset == 10 {  // any minor version is readable
                        XCTAssertNoThrow(try CartFile.decode(b))
                        continue
                    }
                    expectFailure(b, "\(dtype) field \(offset) = \(v), resealed")
                }
            }
            // 4. sections shuffled, swapped, repeated or dropped, with the header left as is
            //    and with the header rewritten to match
            let s = Sections(good)
            let parts = [s.metadata, s.retrieval, s.payload]
            let orders = [[1, 0, 2], [0, 2, 1], [2, 1, 0], [2, 0, 1], [1, 2, 0], [0, 0, 2], [0, 1, 1], [0, 2], [1, 2], [0, 1]]
            for order in orders {
                let body = order.flatMap { parts[$0] }
                expectFailure(s.header + body, "\(dtype) sections \(order), old header")
                if order.count == 3 {
                    var t = s
                    (t.metadata, t.retrieval, t.payload) = (parts[order[0]], parts[order[1]], parts[order[2]])
                    expectFailure(t.assembled(), "\(dtype) sections \(order), matching header")
                }
            }
            // 5. random byte runs overwritten inside one section, with every checksum made valid,
            //    so the parsers behind the checksums see the damage
            for _ in 0..<100 {
                var t = s
                let which = Int.random(in: 0..<3, using: &rng)
                func smash(_ a: inout [UInt8]) {
                    guard !a.isEmpty else { return }
                    let at = Int.random(in: 0..<a.count, using: &rng)
                    let len = Int.random(in: 1...8, using: &rng)
                    for i in at..<min(a.count, at + len) { a[i] = UInt8.random(in: 0...255, using: &rng) }
                }
                switch which {
                case 0: smash(&t.metadata)
                case 1: smash(&t.retrieval)
                default: smash(&t.payload)
                }
                let b = t.assembled()
                if b == good { continue }
                // a change in the metadata JSON can be harmless (a preview letter, a recipe
                // number), and zstd frames carry no checksum of their own: with every SHA-256
                // recomputed such a file is valid by construction, so only failures are checked
                if (try? CartFile.decode(b)) != nil { continue }
                expectFailure(b, "\(dtype) section \(which) overwritten, checksums valid")
            }
        }
        let seconds = Date().timeIntervalSince(start)
        print("fuzz: \(checked) damaged files, all typed CartErrors, in \(String(format: "%.2f", seconds)) s; by first error: \(kinds.sorted { $0.key < $1.key })")
        XCTAssertGreaterThanOrEqual(checked, 3000)
        XCTAssertLessThan(seconds, 60, "fuzzing must stay fast")
    }
}
