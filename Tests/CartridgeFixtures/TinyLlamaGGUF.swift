import CartridgeModel

/// A tiny llama GGUF built in memory (one layer, dim 8, six tokens, f32/f16 weights), with the
/// byte position of every count, length, type and offset field, so tests can corrupt exactly
/// the header, metadata and tensor table.
public struct TinyLlamaGGUF: Sendable {
    public enum Value: Sendable {
        case u32(UInt32), u64(UInt64), f32(Float), string(String), strings([String]), i32s([Int32])
    }

    public private(set) var bytes: [UInt8] = []
    /// (offset, size in bytes) of every integer field of the header, metadata and tensor table.
    public private(set) var fields: [(offset: Int, size: Int)] = []
    /// Offset of selected fields by name: "kv:KEY" (the value), "type:KEY", "offset:TENSOR", "dims:TENSOR".
    public private(set) var named: [String: Int] = [:]
    /// Where the tensor data starts.
    public private(set) var dataStart = 0

    public static let dim = 8, heads = 2, kvHeads = 1, ffn = 16
    public static let tokens = ["a", "b", "c", "ab", "<|im_end|>", "Ġ"]

    /// The metadata of the model; `overrides` replaces or adds keys (value nil: remove the key).
    public static func metadata(_ overrides: [String: Value?] = [:]) -> [(String, Value)] {
        var kv: [(String, Value)] = [
            ("general.architecture", .string("llama")),
            ("general.alignment", .u32(32)),
            ("llama.block_count", .u32(1)),
            ("llama.embedding_length", .u32(UInt32(dim))),
            ("llama.attention.head_count", .u32(UInt32(heads))),
            ("llama.attention.head_count_kv", .u32(UInt32(kvHeads))),
            ("llama.feed_forward_length", .u32(UInt32(ffn))),
            ("llama.context_length", .u32(64)),
            ("llama.rope.freq_base", .f32(10000)),
            ("llama.attention.layer_norm_rms_epsilon", .f32(1e-5)),
            ("tokenizer.ggml.model", .string("gpt2")),
            ("tokenizer.ggml.tokens", .strings(tokens)),
            ("tokenizer.ggml.merges", .strings(["a b"])),
            ("tokenizer.ggml.token_type", .i32s([1, 1, 1, 1, 3, 1])),
            ("tokenizer.ggml.eos_token_id", .u32(4)),
        ]
        for (key, value) in overrides {
            kv.removeAll { $0.0 == key }
            if let value { kv.append((key, value)) }
        }
        return kv
    }

    /// (name, ggml shape, type) of every tensor; f16 for the norms, f32 for the rest.
    public static let tensors: [(String, [UInt64], GGMLType)] = {
        let d = UInt64(dim), kv = UInt64(kvHeads * dim / heads), f = UInt64(ffn), v = UInt64(tokens.count)
        return [
            ("token_embd.weight", [d, v], .f32), ("output_norm.weight", [d], .f16),
            ("blk.0.attn_norm.weight", [d], .f16), ("blk.0.attn_q.weight", [d, d], .f32),
            ("blk.0.attn_k.weight", [d, kv], .f32), ("blk.0.attn_v.weight", [d, kv], .f32),
            ("blk.0.attn_output.weight", [d, d], .f32), ("blk.0.ffn_norm.weight", [d], .f16),
            ("blk.0.ffn_gate.weight", [d, f], .f32), ("blk.0.ffn_up.weight", [d, f], .f32),
            ("blk.0.ffn_down.weight", [f, d], .f32),
        ]
    }()

    public init(metadata overrides: [String: Value?] = [:], alignment: Int = 32) {
        u32(0x4655_4747, field: false)  // "GGUF"
        u32(3)
        u64(UInt64(Self.tensors.count))
        let kv = Self.metadata(overrides)
        u64(UInt64(kv.count))
        for (key, value) in kv {
            string(key)
            named["type:" + key] = bytes.count
            switch value {
            case let .u32(v): u32(4); named["kv:" + key] = bytes.count; u32(v)
            case let .u64(v): u32(10); named["kv:" + key] = bytes.count; u64(v)
            case let .f32(v): u32(6); named["kv:" + key] = bytes.count; u32(v.bitPattern, field: false)
            case let .string(s): u32(8); named["kv:" + key] = bytes.count; string(s)
            case let .strings(a): u32(9); u32(8); named["kv:" + key] = bytes.count; u64(UInt64(a.count)); a.forEach { string($0) }
            case let .i32s(a): u32(9); u32(5); named["kv:" + key] = bytes.count; u64(UInt64(a.count)); a.forEach { u32(UInt32(bitPattern: $0)) }
            }
        }
        var offset: UInt64 = 0
        var sizes: [Int] = []
        for (name, shape, type) in Self.tensors {
            string(name)
            u32(UInt32(shape.count))
            named["dims:" + name] = bytes.count
            shape.forEach { u64($0) }
            u32(type.rawValue)
            named["offset:" + name] = bytes.count
            u64(offset)
            let size = Int(shape.reduce(1, *)) * type.blockBytes
            sizes.append(size)
            offset += UInt64((size + alignment - 1) / alignment * alignment)
        }
        while bytes.count % alignment != 0 { bytes.append(0) }
        dataStart = bytes.count
        // small deterministic weights
        var state: UInt32 = 12345
        for ((_, _, type), size) in zip(Self.tensors, sizes) {
            let start = bytes.count
            for _ in 0..<(size / type.blockBytes) {
                state = state &* 1_664_525 &+ 1_013_904_223
                let x = Float(Int(state >> 16) % 200 - 100) / 400
                if type == .f16 {
                    let h = Float16(1 + x).bitPattern
                    bytes += [UInt8(h & 0xFF), UInt8(h >> 8)]
                } else {
                    withUnsafeBytes(of: x.bitPattern.littleEndian) { bytes += $0 }
                }
            }
            let padded = (size + alignment - 1) / alignment * alignment
            bytes += [UInt8](repeating: 0, count: padded - (bytes.count - start))
        }
    }

    private mutating func u32(_ v: UInt32, field: Bool = true) {
        if field { fields.append((bytes.count, 4)) }
        withUnsafeBytes(of: v.littleEndian) { bytes += $0 }
    }

    private mutating func u64(_ v: UInt64) {
        fields.append((bytes.count, 8))
        withUnsafeBytes(of: v.littleEndian) { bytes += $0 }
    }

    private mutating func string(_ s: String) {
        u64(UInt64(s.utf8.count))
        bytes += Array(s.utf8)
    }
}
