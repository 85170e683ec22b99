/// An owned, zero-initialised, 64-byte aligned buffer of `Float`s.
///
/// Kernels work on its `pointer` directly: no copy-on-write, no bounds checks in hot loops.
public final class FloatBuffer: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>

    public init(count: Int) {
        invariant(count >= 0, "FloatBuffer count must be non-negative")
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(1, count) * 4, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(1, count))
        pointer.initialize(repeating: 0, count: count)
    }

    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit { pointer.deallocate() }

    public subscript(i: Int) -> Float {
        get { pointer[i] }
        set { pointer[i] = newValue }
    }

    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }

    public func zero() { pointer.update(repeating: 0, count: count) }

    /// Bytes held by this buffer.
    public var bytes: Int { count * 4 }
}

/// A pointer handed to `DispatchQueue.concurrentPerform` workers that write disjoint ranges.
public struct SendablePointer<T>: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<T>
    public init(_ pointer: UnsafeMutablePointer<T>) { self.pointer = pointer }
}
