import CartridgeFormat
import CartridgeKernels
import CartridgeModel
import Foundation

/// A cartridge in memory, ready to be placed in front of the attention.
public final class LoadedCartridge: @unchecked Sendable {
    /// The file name without `.cart` (or a name given at creation).
    public let name: String
    public let metadata: CartridgeMetadata
    /// (layers, kvHeads, length, headDim) post-RoPE keys
    public let keys: FloatBuffer
    /// (layers, kvHeads, length, headDim)
    public let values: FloatBuffer

    public init(name: String, metadata: CartridgeMetadata, keys: FloatBuffer, values: FloatBuffer) {
        invariant(keys.count == metadata.layers * metadata.kvHeads * metadata.length * metadata.headDim && values.count == keys.count)
        self.name = name
        self.metadata = metadata
        self.keys = keys
        self.values = values
    }

    public convenience init(name: String, cartridge: Cartridge) {
        self.init(name: name, metadata: cartridge.metadata, keys: FloatBuffer(cartridge.keys), values: FloatBuffer(cartridge.values))
    }

    /// Number of KV slots p.
    public var length: Int { metadata.length }

    /// Bytes of the f32 tensors in memory.
    public var bytes: Int { keys.bytes + values.bytes }

    /// The cartridge's storage, for copies into a KV cache.
    var slots: KVSlots {
        KVSlots(keys: keys.pointer, values: values.pointer, layers: metadata.layers, kvHeads: metadata.kvHeads,
                headDim: metadata.headDim, slots: metadata.length)
    }
}
