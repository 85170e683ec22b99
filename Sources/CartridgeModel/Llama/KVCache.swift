import CartridgeKernels

/// Keys (post-RoPE) and values of every layer for one sequence.
///
/// Layout: keys and values are each (layers, kvHeads, capacity, headDim). Slots 0..<count are
/// filled; a cartridge occupies the first slots, ordinary tokens follow at positions count...
///
/// A cache may continue a shared `base` cache (a context many sequences read, such as a corpus
/// prefilled once): its own slot i then holds position `base.count + i`, and attention reads the
/// base's slots first, without copying them. The base must not change while it is shared.
public final class KVCache: @unchecked Sendable {
    public let layers: Int, kvHeads: Int, headDim: Int, capacity: Int
    public private(set) var count = 0
    public let keys: FloatBuffer
    public let values: FloatBuffer
    /// The shared cache this one continues, and its length when this cache was made.
    public let base: KVCache?
    public let baseLength: Int

    public init(config: ModelConfig, capacity: Int, base: KVCache? = nil) {
        layers = config.layers
        kvHeads = config.kvHeads
        headDim = config.headDim
        self.capacity = capacity
        keys = FloatBuffer(count: layers * kvHeads * capacity * headDim)
        values = FloatBuffer(count: layers * kvHeads * capacity * headDim)
        invariant(base?.base == nil, "a shared base cannot itself continue a base")
        self.base = base
        baseLength = base?.count ?? 0
    }

    /// The position of the next token: the base's slots, then this cache's.
    public var position: Int { baseLength + count }

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
