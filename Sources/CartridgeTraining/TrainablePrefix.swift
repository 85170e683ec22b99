import CartridgeKernels
import CartridgeModel

/// A KV-cache prefix that training optimizes: for every layer, keys (post-RoPE) and values of
/// shape (kvHeads, length, headDim). The first `frozen` slots (slot 0 is the attention sink) are
/// never updated.
public final class TrainablePrefix: @unchecked Sendable {
    public let layers: Int, kvHeads: Int, headDim: Int
    /// Number of slots p.
    public let length: Int
    /// Leading slots excluded from updates.
    public let frozen: Int
    /// (layers, kvHeads, length, headDim)
    public let keys: FloatBuffer
    /// (layers, kvHeads, length, headDim)
    public let values: FloatBuffer

    public init(layers: Int, kvHeads: Int, headDim: Int, length: Int, frozen: Int) {
        invariant(length > 0 && frozen >= 0 && frozen <= length)
        self.layers = layers
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.length = length
        self.frozen = frozen
        keys = FloatBuffer(count: layers * kvHeads * length * headDim)
        values = FloatBuffer(count: layers * kvHeads * length * headDim)
    }

    /// The paper's initialization: run the frozen model over `ids` at positions 0..<ids.count and
    /// take its KV cache (keys after RoPE).
    public convenience init(model: LlamaModel, ids: [Int], frozen: Int = 1) {
        let c = model.config
        self.init(layers: c.layers, kvHeads: c.kvHeads, headDim: c.headDim, length: ids.count, frozen: frozen)
        let cache = model.makeCache(capacity: ids.count)
        _ = model.forward(tokens: [ids], caches: [cache])
        slots.copy(count: length, from: cache.slots)
    }

    /// A prefix holding given keys (post-RoPE) and values, each (layers, kvHeads, length, headDim).
    public convenience init(model: LlamaModel, keys: [Float], values: [Float], length: Int, frozen: Int = 1) {
        let c = model.config
        self.init(layers: c.layers, kvHeads: c.kvHeads, headDim: c.headDim, length: length, frozen: frozen)
        invariant(keys.count == self.keys.count && values.count == self.values.count, "keys and values must be (layers, kvHeads, length, headDim)")
        self.keys.pointer.update(from: keys, count: keys.count)
        self.values.pointer.update(from: values, count: values.count)
    }

    /// The prefix's storage, for copies in and out.
    public var slots: KVSlots {
        KVSlots(keys: keys.pointer, values: values.pointer, layers: layers, kvHeads: kvHeads, headDim: headDim, slots: length)
    }

    /// Start of the (length, headDim) keys of one layer's KV head.
    @inline(__always)
    public func key(layer: Int, head: Int) -> UnsafeMutablePointer<Float> {
        keys.pointer + (layer * kvHeads + head) * length * headDim
    }

    @inline(__always)
    public func value(layer: Int, head: Int) -> UnsafeMutablePointer<Float> {
        values.pointer + (layer * kvHeads + head) * length * headDim
    }

    /// Number of values that training updates.
    public var trainableCount: Int { 2 * layers * kvHeads * (length - frozen) * headDim }

    /// A KV cache holding this prefix in its first slots, ready for generation.
    public func makeCache(model: LlamaModel, extraCapacity: Int) -> KVCache {
        let cache = model.makeCache(capacity: length + extraCapacity)
        cache.slots.copy(count: length, from: slots)
        cache.advance(by: length)
        return cache
    }
}
