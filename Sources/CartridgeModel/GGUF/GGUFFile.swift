import CartridgeKernels
/// Description of one tensor in a GGUF file.
public struct GGUFTensorInfo: Sendable {
    public let name: String
    /// Dimensions in ggml order: `shape[0]` is the contiguous (row) length.
    public let shape: [Int]
    public let type: GGMLType
    /// Offset of the data relative to the start of the data section.
    public let offset: Int
    public let byteCount: Int
    public var elementCount: Int { shape.reduce(1, *) }
}

/// A parsed GGUF (v2 or v3) file: metadata, tensor table and memory-mapped tensor data.
///
/// Validated as it is read, as llama.cpp's `gguf.cpp` does: every count and length is bounded
/// by the bytes left before anything is allocated; `general.alignment` must be a u32 power of
/// two; each tensor's shape, type and data offset are checked (offsets must follow each other,
/// each tensor padded to the alignment) as 64-bit values before any conversion to `Int`; every
/// tensor must lie inside the data section. A truncated or corrupt file gives a `GGUFError`
/// naming the key or tensor, never a crash.
public final class GGUFFile: @unchecked Sendable {
    public let path: String
    public let version: UInt32
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order.
    public let keys: [String]
    public let tensors: [String: GGUFTensorInfo]
    /// Tensor names in file order.
    public let tensorNames: [String]
    public let alignment: Int
    private let file: MappedFile
    private let dataStart: Int

    /// Maps and parses the file at `path`.
    public convenience init(path: String) throws {
        try self.init(path: path, storage: try MappedFile(path: path) { GGUFError.cannotOpen(path: path, reason: $0) })
    }

    /// Parses a GGUF image held in memory (the bytes are copied); `name` stands for the path in
    /// messages. For tests and fuzzing.
    public convenience init(bytes: [UInt8], name: String = "<memory>") throws {
        try self.init(path: name, storage: MappedFile(copying: bytes, path: name))
    }

    private init(path: String, storage: MappedFile) throws {
        self.path = path
        file = storage
        var r = ByteReader(bytes: file.bytes)
        let magic = try r.u32("magic")
        guard magic == 0x4655_4747 else { throw GGUFError.notGGUF(path: path) }
        let v = try r.u32("version")
        if v.byteSwapped == 2 || v.byteSwapped == 3 { throw GGUFError.bigEndian(path: path) }
        guard v == 2 || v == 3 else { throw GGUFError.unsupportedVersion(v) }
        version = v
        let tensorCount = try r.u64("tensor count")
        let kvCount = try r.u64("metadata count")
        // Every entry needs at least a few bytes; anything larger than the file is corrupt.
        let limit = UInt64(file.size / 8 + 1)
        guard tensorCount <= limit else { throw GGUFError.implausibleCount(what: "tensor count", count: tensorCount, limit: limit) }
        guard kvCount <= limit else { throw GGUFError.implausibleCount(what: "metadata count", count: kvCount, limit: limit) }

        var meta: [String: GGUFValue] = [:]
        var keys: [String] = []
        for i in 0..<Int(kvCount) {
            let key = try r.string("key of metadata entry \(i)")
            let rawType = try r.u32("type of key '\(key)'")
            guard let type = GGUFValueType(rawValue: rawType) else { throw GGUFError.invalidValueType(key: key, rawType: rawType) }
            let value = try r.value(type, key: key, depth: 0)
            guard meta[key] == nil else { throw GGUFError.duplicateKey(key) }
            meta[key] = value
            keys.append(key)
        }
        metadata = meta
        self.keys = keys

        var align = 32
        if let a = meta["general.alignment"] {
            guard case let .uint32(ai) = a else { throw GGUFError.wrongKeyType(key: "general.alignment", expected: "a u32", found: a.typeName) }
            guard ai > 0, ai <= 65536, ai & (ai - 1) == 0 else { throw GGUFError.badAlignment(UInt64(ai)) }
            align = Int(ai)
        }
        alignment = align

        var infos: [String: GGUFTensorInfo] = [:]
        var names: [String] = []
        // where the next tensor's data must start, relative to the data section (as in gguf.cpp)
        var running: UInt64 = 0
        let fileSize = UInt64(file.size)
        for i in 0..<Int(tensorCount) {
            let name = try r.string("name of tensor \(i)")
            let nDims = try r.u32("dimension count of tensor '\(name)'")
            guard nDims >= 1, nDims <= 4 else { throw GGUFError.badTensorShape(tensor: name, shape: [UInt64(nDims)]) }
            var dims: [UInt64] = []
            for _ in 0..<nDims { dims.append(try r.u64("shape of tensor '\(name)'")) }
            var elements: UInt64 = 1
            for d in dims {
                guard d > 0, d < (1 << 40) else { throw GGUFError.badTensorShape(tensor: name, shape: dims) }
                let (m, overflow) = elements.multipliedReportingOverflow(by: d)
                guard !overflow, m < (1 << 42) else { throw GGUFError.badTensorShape(tensor: name, shape: dims) }
                elements = m
            }
            let rawType = try r.u32("type of tensor '\(name)'")
            guard let type = GGMLType(rawValue: rawType) else { throw GGUFError.unknownTensorType(tensor: name, rawType: rawType) }
            guard dims[0] % UInt64(type.blockSize) == 0 else { throw GGUFError.badTensorShape(tensor: name, shape: dims) }
            let offset = try r.u64("data offset of tensor '\(name)'")
            guard offset % UInt64(align) == 0 else { throw GGUFError.misalignedTensor(tensor: name, offset: offset, alignment: UInt64(align)) }
            guard offset == running else { throw GGUFError.unexpectedTensorOffset(tensor: name, offset: offset, expected: running) }
            // elements < 2^42 and blocks of at most 292 bytes: no overflow below
            let bytes = elements / UInt64(type.blockSize) * UInt64(type.blockBytes)
            guard bytes <= fileSize, offset <= fileSize - bytes else {
                throw GGUFError.tensorOutOfBounds(tensor: name, offset: offset, bytes: bytes, dataSize: fileSize)
            }
            running = offset + (bytes + UInt64(align) - 1) / UInt64(align) * UInt64(align)
            guard infos[name] == nil else { throw GGUFError.duplicateTensor(name) }
            infos[name] = GGUFTensorInfo(name: name, shape: dims.map { Int($0) }, type: type,
                                         offset: Int(offset), byteCount: Int(bytes))
            names.append(name)
        }
        tensors = infos
        tensorNames = names

        let start = (r.offset + align - 1) / align * align
        dataStart = start
        let dataSize = UInt64(max(0, file.size - start))
        for name in names {
            guard let t = infos[name] else { continue }
            // offsets and sizes are below the file size (checked above): no overflow
            guard UInt64(t.offset) + UInt64(t.byteCount) <= dataSize else {
                throw GGUFError.tensorOutOfBounds(tensor: name, offset: UInt64(t.offset), bytes: UInt64(t.byteCount), dataSize: dataSize)
            }
        }
    }

    /// The raw bytes of a tensor, as stored (quantized blocks for quantized types).
    public func data(_ name: String) throws -> UnsafeRawBufferPointer {
        guard let t = tensors[name] else { throw GGUFError.missingTensor(name) }
        return UnsafeRawBufferPointer(rebasing: file.bytes[(dataStart + t.offset)..<(dataStart + t.offset + t.byteCount)])
    }

    /// The tensor's values dequantized to f32, in storage order.
    public func floats(_ name: String) throws -> [Float] {
        guard let t = tensors[name] else { throw GGUFError.missingTensor(name) }
        guard t.type.isSupported else { throw GGUFError.unsupportedTensorType(tensor: name, type: t.type.name) }
        let raw = try data(name)
        var out = [Float](repeating: 0, count: t.elementCount)
        try out.withUnsafeMutableBufferPointer { dst in
            try Dequantize.run(t.type, from: raw.baseAddress!, count: t.elementCount, into: dst.baseAddress!)
        }
        return out
    }

    // MARK: typed metadata getters

    public func value(_ key: String) throws -> GGUFValue {
        guard let v = metadata[key] else { throw GGUFError.missingKey(key) }
        return v
    }

    public func int(_ key: String) throws -> Int {
        let v = try value(key)
        guard let i = v.int else { throw GGUFError.wrongKeyType(key: key, expected: "an integer", found: v.typeName) }
        return i
    }

    public func double(_ key: String) throws -> Double {
        let v = try value(key)
        guard let d = v.double else { throw GGUFError.wrongKeyType(key: key, expected: "a number", found: v.typeName) }
        return d
    }

    public func string(_ key: String) throws -> String {
        let v = try value(key)
        guard let s = v.string else { throw GGUFError.wrongKeyType(key: key, expected: "a string", found: v.typeName) }
        return s
    }

    public func strings(_ key: String) throws -> [String] {
        let v = try value(key)
        guard case let .array(.string, items) = v else { throw GGUFError.wrongKeyType(key: key, expected: "an array of string", found: v.typeName) }
        return items.compactMap(\.string)  // every item of an array of string is a string
    }

    public func ints(_ key: String) throws -> [Int] {
        let v = try value(key)
        guard let items = v.array, let ints = Optional(items.compactMap(\.int)), ints.count == items.count else {
            throw GGUFError.wrongKeyType(key: key, expected: "an array of integers", found: v.typeName)
        }
        return ints
    }

    public func optionalInt(_ key: String) throws -> Int? { metadata[key] == nil ? nil : try int(key) }
    public func optionalDouble(_ key: String) throws -> Double? { metadata[key] == nil ? nil : try double(key) }
    public func optionalString(_ key: String) throws -> String? { metadata[key] == nil ? nil : try string(key) }
}

/// A bounds-checked little-endian cursor over the header of a GGUF file.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    mutating func need(_ n: Int, _ what: String) throws {
        guard n >= 0, offset <= bytes.count - n else {
            throw GGUFError.truncated(what: what, offset: offset, needed: n, fileSize: bytes.count)
        }
    }

    mutating func read<T: FixedWidthInteger>(_ type: T.Type, _ what: String) throws -> T {
        try need(MemoryLayout<T>.size, what)
        let v = bytes.loadUnaligned(fromByteOffset: offset, as: T.self)
        offset += MemoryLayout<T>.size
        return T(littleEndian: v)
    }

    mutating func u32(_ what: String) throws -> UInt32 { try read(UInt32.self, what) }
    mutating func u64(_ what: String) throws -> UInt64 { try read(UInt64.self, what) }

    mutating func string(_ what: String) throws -> String {
        let n = try u64("length of \(what)")
        guard n <= UInt64(bytes.count - offset) else {
            throw GGUFError.truncated(what: what, offset: offset, needed: Int(clamping: n), fileSize: bytes.count)
        }
        let slice = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + Int(n))])
        offset += Int(n)
        guard let s = String(validating: slice.bindMemory(to: UInt8.self), as: UTF8.self) else {
            throw GGUFError.invalidUTF8(what: what)
        }
        return s
    }

    mutating func value(_ type: GGUFValueType, key: String, depth: Int) throws -> GGUFValue {
        let what = "value of key '\(key)'"
        switch type {
        case .uint8: return .uint8(try read(UInt8.self, what))
        case .int8: return .int8(try read(Int8.self, what))
        case .uint16: return .uint16(try read(UInt16.self, what))
        case .int16: return .int16(try read(Int16.self, what))
        case .uint32: return .uint32(try read(UInt32.self, what))
        case .int32: return .int32(try read(Int32.self, what))
        case .float32: return .float32(Float(bitPattern: try read(UInt32.self, what)))
        case .uint64: return .uint64(try read(UInt64.self, what))
        case .int64: return .int64(try read(Int64.self, what))
        case .float64: return .float64(Double(bitPattern: try read(UInt64.self, what)))
        case .bool:
            let b = try read(UInt8.self, what)
            guard b <= 1 else { throw GGUFError.wrongKeyType(key: key, expected: "a bool (0 or 1)", found: "byte \(b)") }
            return .bool(b == 1)
        case .string: return .string(try string(what))
        case .array:
            guard depth == 0 else { throw GGUFError.invalidValueType(key: key, rawType: GGUFValueType.array.rawValue) }
            let rawItem = try u32("element type of key '\(key)'")
            guard let item = GGUFValueType(rawValue: rawItem) else { throw GGUFError.invalidValueType(key: key, rawType: rawItem) }
            let count = try u64("element count of key '\(key)'")
            // Each element takes at least one byte (strings at least 8): bound the count by what is left.
            let minSize: UInt64 = item == .string ? 8 : 1
            let left = UInt64(bytes.count - offset)
            guard count <= left / minSize else {
                throw GGUFError.implausibleCount(what: "element count of key '\(key)'", count: count, limit: left / minSize)
            }
            var items: [GGUFValue] = []
            items.reserveCapacity(Int(count))
            for _ in 0..<Int(count) { items.append(try value(item, key: key, depth: depth + 1)) }
            return .array(item, items)
        }
    }
}
