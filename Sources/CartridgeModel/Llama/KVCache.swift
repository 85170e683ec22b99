import CartridgeKernels

/// Keys (post-RoPE) and values of every layer for one sequence.
///
/// Layout: keys and values are each (layers, kvHeads, capacity, headDim). Slots 0..<count are
/// filled; a cartridge occupies the first slots, ordinary tokens follow at positions count...
public final class KVCache: @unchecked Sendable {
    public let layers: Int, kvHeads: Int, headDim: Int, capacity: Int
    public private(set) var count = 0
    public let keys: FloatBuffer
    public let values: FloatBuffer

    public init(config: ModelConfig, capacity: Int) {
        layers = config.layers
        kvHeads = config.kvHeads
        headDim = config.headDim
        self.capacity = capacity
        keys = FloatBuffer(count: layers * kvHeads * capacity * headDim)
        values = FloatBuffer(count: layers * kvHeads * capacity * headDim)
    }

    /// Start of (capacity, headDim) keys of one layer's KV head.
    @inline(__always)
    public func key(layer: Int, head: Int) -> UnsafeMutablePointer<Float> {
        keys.pointer + (layer * kvHeads + head) * capacity * headDim
    }

    @inline(__always)
    public func value(layer: Int, head: Int) -> UnsafeMutablePointer<Float> {
        values.pointer + (layer * kvHeads + head) * capacity * headDim
    }

    /// The whole storage (all `capacity` slots), for copies in and out.
    public var slots: KVSlots {
        KVSlots(keys: keys.pointer, values: values.pointer, layers: layers, kvHeads: kvHeads, headDim: headDim, slots: capacity)
    }

    /// Slots still free.
    public var remaining: Int { capacity - count }

    /// Marks `n` more slots as filled (after a forward pass wrote them).
    public func advance(by n: Int) {
        guard n >= 0 && count + n <= capacity else { fatalError("KV cache overflow: \(count) + \(n) slots, capacity \(capacity)") }
        count += n
    }

    /// Forgets everything after the first `n` slots (for example, to reuse a prompt's cache).
    public func truncate(to n: Int) {
        invariant(n >= 0 && n <= count)
        count = n
    }

    /// Copies the first `n` slots of `other` into this cache's first slots.
    public func copyPrefix(from other: KVCache, count n: Int) {
        invariant(n <= other.count)
        slots.copy(count: n, from: other.slots)
        count = n
    }

    /// Bytes of keys and values held per filled slot.
    public var bytesPerToken: Int { layers * kvHeads * headDim * 2 * 4 }
}
