import CartridgeKernels
/// Keys and values of every layer laid out (layers, kvHeads, slots, headDim), as a KV cache, a
/// cartridge in memory and a trainable prefix all hold them. Every copy of KV slots between
/// them goes through `copy(count:from:at:to:)`.
public struct KVSlots {
    /// (layers, kvHeads, slots, headDim)
    public let keys: UnsafeMutablePointer<Float>
    /// (layers, kvHeads, slots, headDim)
    public let values: UnsafeMutablePointer<Float>
    public let layers: Int, kvHeads: Int, headDim: Int
    /// Slots per (layer, KV head): a cache's capacity, a prefix's or cartridge's length.
    public let slots: Int

    public init(keys: UnsafeMutablePointer<Float>, values: UnsafeMutablePointer<Float>,
                layers: Int, kvHeads: Int, headDim: Int, slots: Int) {
        self.keys = keys
        self.values = values
        self.layers = layers
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.slots = slots
    }

    /// Copies `count` slots of every (layer, KV head) from `source`, starting at its slot
    /// `sourceStart`, into this storage's slots `start..<start + count`.
    public func copy(count: Int, from source: KVSlots, at sourceStart: Int = 0, to start: Int = 0) {
        invariant(source.layers == layers && source.kvHeads == kvHeads && source.headDim == headDim, "KV geometry differs")
        invariant(count >= 0 && sourceStart >= 0 && start >= 0 && sourceStart + count <= source.slots && start + count <= slots)
        for l in 0..<layers {
            for h in 0..<kvHeads {
                let from = ((l * kvHeads + h) * source.slots + sourceStart) * headDim
                let to = ((l * kvHeads + h) * slots + start) * headDim
                (keys + to).update(from: source.keys + from, count: count * headDim)
                (values + to).update(from: source.values + from, count: count * headDim)
            }
        }
    }
}
