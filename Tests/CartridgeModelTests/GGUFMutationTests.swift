@testable import CartridgeModel
import CartridgeFixtures
import CartridgeKernels
import Foundation
import XCTest

/// Loads GGUF bytes as far as they go: the file, the configuration, the tokenizer, the weights,
/// then one forward pass and a tokenization. Returns nil on success, or the typed error.
/// Anything else (an untyped error) fails the calling test; a crash ends it.
func loadTinyModel(_ bytes: [UInt8]) -> Error? {
    do {
        let lm = try LanguageModel(gguf: try GGUFFile(bytes: bytes))
        let ids = lm.chatIDs([ChatMessage(.user, "ab c")])
        _ = try lm.logits(ids: ids)
        return nil
    } catch let e as GGUFError {
        return e
    } catch let e as TokenizerError {
        return e
    } catch let e as DequantizeError {
        return e
    } catch let e as ModelInputError {
        return e
    } catch {
        XCTFail("untyped error \(type(of: error)): \(error)")
        return error
    }
}

/// Deterministic mutations of a small llama GGUF (header, metadata and tensor table): every
/// one loads or gives a typed error, quickly. The libFuzzer target (Fuzz/GGUFFuzzer) does the
/// same at random for longer; each crash it found is a regression case here.
final class GGUFMutationTests: XCTestCase {
    func testTheTinyModelLoadsAndRuns() throws {
        let tiny = TinyLlamaGGUF()
        XCTAssertNil(loadTinyModel(tiny.bytes))
        let gguf = try GGUFFile(bytes: tiny.bytes)
        XCTAssertEqual(gguf.tensorNames.count, TinyLlamaGGUF.tensors.count)
        XCTAssertEqual(try ModelConfig(gguf: gguf).headDim, 4)
    }

    func testTwoThousandFourHundredMutationsGiveTypedErrorsOrLoad() throws {
        let tiny = TinyLlamaGGUF()
        let original = tiny.bytes, fields = tiny.fields, header = tiny.dataStart
        let interesting: [UInt64] = [0, 1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 16, 31, 32, 33, 63, 64, 255, 256, 4096, 65536,
                                     0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 1 << 32, 1 << 40, 1 << 42, 1 << 62, 1 << 63,
                                     UInt64.max, UInt64.max - 1]
        var rng = SplitMix64(seed: 0x5EED_6617)  // the same mutations on every run and platform
        var outcomes: [String: Int] = [:]
        var slowest: Duration = .zero
        let clock = ContinuousClock()
        let total = clock.measure {
            for i in 0..<2400 {
                var b = original
                let kind = i % 6
                switch kind {
                case 0, 1:  // an integer field set to an interesting value, or nudged
                    let f = fields[rng.below(fields.count)]
                    var v: UInt64 = 0
                    for k in 0..<f.size { v |= UInt64(b[f.offset + k]) << (8 * UInt64(k)) }
                    if kind == 0 {
                        v = rng.below(4) == 0 ? rng.next() : interesting[rng.below(interesting.count)]
                    } else {
                        v = rng.below(2) == 0 ? v &+ UInt64(rng.below(8) + 1) : v &- UInt64(rng.below(8) + 1)
                    }
                    for k in 0..<f.size { b[f.offset + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(k))) }
                case 2:  // a few random bytes of the header, metadata or tensor table
                    for _ in 0..<(rng.below(4) + 1) { b[rng.below(header)] ^= UInt8(truncatingIfNeeded: rng.next() | 1) }
                case 3:  // a truncation
                    b = Array(b.prefix(rng.below(b.count)))
                case 4:  // bytes inserted into or removed from the header
                    let at = rng.below(header)
                    if rng.below(2) == 0 {
                        b.insert(contentsOf: (0..<(rng.below(8) + 1)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: at)
                    } else {
                        b.removeSubrange(at..<min(header, at + rng.below(8) + 1))
                    }
                default:  // two fields at once
                    for _ in 0..<2 {
                        let f = fields[rng.below(fields.count)]
                        let v = interesting[rng.below(interesting.count)]
                        for k in 0..<f.size { b[f.offset + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(k))) }
                    }
                }
                let start = clock.now
                let result = loadTinyModel(b)
                slowest = max(slowest, clock.now - start)
                // "GGUFError.truncated", ...: the type and case of each outcome
                let label = result.map { "\(type(of: $0)).\(Mirror(reflecting: $0).children.first?.label ?? "\($0)")" } ?? "loaded"
                outcomes[label, default: 0] += 1
            }
        }
        print("GGUF mutations: 2400 in \(total), slowest \(slowest); outcomes \(outcomes.sorted { $0.key < $1.key })")
        XCTAssertLessThan(slowest, .seconds(1), "a mutation took \(slowest): a hang?")
        XCTAssertGreaterThan(outcomes["loaded"] ?? 0, 0, "no mutation loaded: the test exercises only the first checks")
        XCTAssertGreaterThan(2400 - (outcomes["loaded"] ?? 0), 1000)
    }

    // MARK: - regressions: each names the value and the limit

    private func error(_ tiny: TinyLlamaGGUF, patch: (inout [UInt8]) -> Void = { _ in }) -> String {
        var b = tiny.bytes
        patch(&b)
        guard let e = loadTinyModel(b) else { XCTFail("loaded"); return "" }
        return "\(e)"
    }

    private func put(_ b: inout [UInt8], _ at: Int, _ v: UInt64, size: Int = 8) {
        for k in 0..<size { b[at + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(k))) }
    }

    func testAlignmentMustBeAU32PowerOfTwo() {
        var m = error(TinyLlamaGGUF(metadata: ["general.alignment": .u64(32)]))
        XCTAssertTrue(m.contains("general.alignment") && m.contains("u32") && m.contains("u64"), m)
        m = error(TinyLlamaGGUF(metadata: ["general.alignment": .u32(24)]))
        XCTAssertTrue(m.contains("24") && m.contains("power of two"), m)
        m = error(TinyLlamaGGUF(metadata: ["general.alignment": .u32(0)]))
        XCTAssertTrue(m.contains("general.alignment is 0"), m)
    }

    func testHugeTensorOffsetsAreCheckedBeforeConversion() {
        let tiny = TinyLlamaGGUF()
        for v: UInt64 in [1 << 63, UInt64.max - 31, 1 << 40, 64] {
            let m = error(tiny) { put(&$0, tiny.named["offset:blk.0.attn_q.weight"]!, v) }
            XCTAssertTrue(m.contains("blk.0.attn_q.weight") && m.contains("\(v)"), m)
        }
        // the first tensor must start the data section
        let m = error(tiny) { put(&$0, tiny.named["offset:token_embd.weight"]!, 32) }
        XCTAssertTrue(m.contains("offset 32, expected 0"), m)
    }

    func testHugeDimensionsAndCountsAreTypedErrors() {
        let tiny = TinyLlamaGGUF()
        var m = error(tiny) { put(&$0, tiny.named["dims:blk.0.ffn_down.weight"]!, 1 << 39) }
        XCTAssertTrue(m.contains("blk.0.ffn_down.weight"), m)
        m = error(tiny) { put(&$0, tiny.named["kv:tokenizer.ggml.tokens"]!, 1 << 61) }
        XCTAssertTrue(m.contains("tokenizer.ggml.tokens") && m.contains("\(UInt64(1) << 61)"), m)
    }

    func testHyperparametersAreValidated() {
        let cases: [(String, TinyLlamaGGUF.Value, [String])] = [
            ("llama.attention.head_count", .u32(0), ["head_count", "is 0", "between 1 and 8"]),
            ("llama.attention.head_count", .u32(3), ["head_count", "is 3", "divisor of the embedding length 8"]),
            ("llama.attention.head_count_kv", .u32(0), ["head_count_kv", "is 0"]),
            ("llama.attention.head_count", .u32(4), ["blk.0.attn_k.weight", "[8, 2]"]),
            ("llama.block_count", .u32(0), ["block_count", "is 0"]),
            ("llama.block_count", .u32(4_000_000_000), ["block_count", "4000000000", "1024"]),
            ("llama.embedding_length", .u32(0), ["embedding_length", "is 0"]),
            ("llama.feed_forward_length", .u32(0), ["feed_forward_length", "is 0"]),
            ("llama.context_length", .u32(0), ["context_length", "is 0"]),
            ("llama.rope.freq_base", .f32(-1), ["freq_base", "-1"]),
            ("llama.attention.layer_norm_rms_epsilon", .f32(.nan), ["layer_norm_rms_epsilon", "nan"]),
            ("llama.vocab_size", .u32(5), ["token_embd.weight"]),
            ("llama.rope.dimension_count", .u32(3), ["dimension_count", "is 3"]),
            ("tokenizer.ggml.eos_token_id", .u32(6), ["EOS", "6", "0..<6"]),
            ("tokenizer.ggml.token_type", .i32s([1, 1]), ["token_type", "2 entries"]),
            ("tokenizer.ggml.merges", .strings(["a"]), ["merge 0"]),
        ]
        for (key, value, expected) in cases {
            let m = error(TinyLlamaGGUF(metadata: [key: value]))
            for e in expected { XCTAssertTrue(m.contains(e), "\(key) = \(value): \(m) lacks \(e)") }
        }
    }
}

private extension SplitMix64 {
    /// Uniform in 0..<n (the modulo bias is irrelevant for picking mutations).
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}
