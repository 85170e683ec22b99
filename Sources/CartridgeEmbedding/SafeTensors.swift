import CartridgeKernels
import Foundation

/// Why a safetensors file could not be read. Every case names the file or tensor at fault.
public enum SafeTensorsError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String, reason: String)
    case fileTooSmall(path: String, size: Int)
    case headerOutOfBounds(path: String, headerLength: UInt64, fileSize: Int)
    case invalidHeader(path: String, reason: String)
    case invalidMetadata(path: String, reason: String)
    case invalidEntry(path: String, tensor: String, reason: String)
    case unknownDType(path: String, tensor: String, dtype: String)
    case byteLengthMismatch(path: String, tensor: String, shape: [Int], dtype: String, expected: Int, found: Int)
    case offsetsOutOfBounds(path: String, tensor: String, begin: Int, end: Int, dataSize: Int)
    case offsetsNotContiguous(path: String, tensor: String, begin: Int, expected: Int)
    case uncoveredData(path: String, covered: Int, dataSize: Int)
    case missingTensor(path: String, tensor: String)
    case unexpectedShape(path: String, tensor: String, expected: [Int], found: [Int])
    case unsupportedConversion(path: String, tensor: String, dtype: String)

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason): return "cannot open safetensors file \(path): \(reason)"
        case let .fileTooSmall(path, size):
            return "\(path) is not a safetensors file: it has \(size) bytes, fewer than the 8-byte header length"
        case let .headerOutOfBounds(path, length, size):
            return "\(path): the header length \(length) does not fit in the file (\(size) bytes); the file is truncated or not safetensors"
        case let .invalidHeader(path, reason): return "\(path): the safetensors header is invalid: \(reason)"
        case let .invalidMetadata(path, reason): return "\(path): the safetensors __metadata__ is invalid: \(reason)"
        case let .invalidEntry(path, tensor, reason): return "\(path): safetensors tensor '\(tensor)' is invalid: \(reason)"
        case let .unknownDType(path, tensor, dtype): return "\(path): safetensors tensor '\(tensor)' has unknown dtype '\(dtype)'"
        case let .byteLengthMismatch(path, tensor, shape, dtype, expected, found):
            return "\(path): safetensors tensor '\(tensor)' (\(dtype) \(shape)) needs \(expected) bytes but its data_offsets span \(found)"
        case let .offsetsOutOfBounds(path, tensor, begin, end, size):
            return "\(path): safetensors tensor '\(tensor)' data [\(begin), \(end)) lies outside the data section (\(size) bytes); the file is truncated or corrupt"
        case let .offsetsNotContiguous(path, tensor, begin, expected):
            return "\(path): safetensors tensor '\(tensor)' starts at data offset \(begin), expected \(expected): tensors overlap or leave a gap"
        case let .uncoveredData(path, covered, size):
            return "\(path): safetensors tensors cover \(covered) bytes of a \(size)-byte data section; the file has trailing bytes"
        case let .missingTensor(path, tensor): return "\(path): safetensors tensor '\(tensor)' is required but missing"
        case let .unexpectedShape(path, tensor, expected, found):
            return "\(path): safetensors tensor '\(tensor)' has shape \(found), expected \(expected)"
        case let .unsupportedConversion(path, tensor, dtype):
            return "\(path): safetensors tensor '\(tensor)' has dtype \(dtype); only F32, F16 and BF16 can be read as float32"
        }
    }
}

/// Element types of the safetensors format.
public enum SafeTensorsDType: String, Sendable, CaseIterable {
    case bool = "BOOL", u8 = "U8", i8 = "I8", f8e5m2 = "F8_E5M2", f8e4m3 = "F8_E4M3"
    case i16 = "I16", u16 = "U16", f16 = "F16", bf16 = "BF16"
    case i32 = "I32", u32 = "U32", f32 = "F32"
    case i64 = "I64", u64 = "U64", f64 = "F64"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .bool, .u8, .i8, .f8e5m2, .f8e4m3: return 1
        case .i16, .u16, .f16, .bf16: return 2
        case .i32, .u32, .f32: return 4
        case .i64, .u64, .f64: return 8
        }
    }
}

/// One tensor's entry of the header. `begin..<end` is relative to the data section.
public struct SafeTensorInfo: Sendable, Equatable {
    /// The tensor's key in the header.
    public let name: String
    public let dtype: SafeTensorsDType
    /// Dimensions, outermost first (PyTorch order: a linear weight is (out, in)).
    public let shape: [Int]
    /// Byte range in the data section.
    public let begin: Int
    public let end: Int

    /// Product of the shape (1 for a scalar).
    public var elementCount: Int { shape.reduce(1, *) }
    /// end - begin, which the reader checks equals elementCount * dtype.size.
    public var byteCount: Int { end - begin }
}

/// A read-only, memory-mapped safetensors file, validated when opened.
///
/// Layout: 8-byte little-endian header length N, N bytes of UTF-8 JSON (an object mapping tensor
/// names to `{"dtype", "shape", "data_offsets": [begin, end]}`, plus an optional `__metadata__`
/// object of strings), then the data section. The tensors must tile the data section exactly:
/// sorted by offset they start at 0, follow each other without gap or overlap, and end at its end.
public final class SafeTensorsFile: @unchecked Sendable {
    /// Header lengths above this are treated as corrupt (the format's own limit is 100 MB).
    public static let maxHeaderLength: UInt64 = 100_000_000

    public let path: String
    /// Every tensor by name (`__metadata__` excluded).
    public let tensors: [String: SafeTensorInfo]
    /// The optional `__metadata__` strings (for example `format: pt`).
    public let metadata: [String: String]
    private let map: MappedFile
    private let dataStart: Int

    /// Opens and validates `path`; throws `SafeTensorsError` on any inconsistency.
    public init(path: String) throws {
        self.path = path
        map = try MappedFile(path: path) { SafeTensorsError.cannotOpen(path: path, reason: $0) }
        let bytes = map.bytes
        guard bytes.count >= 8 else { throw SafeTensorsError.fileTooSmall(path: path, size: bytes.count) }
        let headerLength = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        guard headerLength >= 2, headerLength <= Self.maxHeaderLength, headerLength <= UInt64(bytes.count - 8) else {
            throw SafeTensorsError.headerOutOfBounds(path: path, headerLength: headerLength, fileSize: bytes.count)
        }
        dataStart = 8 + Int(headerLength)
        let dataSize = bytes.count - dataStart
        let header = Data(bytes[8..<dataStart])
        guard header.first == UInt8(ascii: "{") else {
            throw SafeTensorsError.invalidHeader(path: path, reason: "it does not start with '{'")
        }
        guard String(data: header, encoding: .utf8) != nil else {
            throw SafeTensorsError.invalidHeader(path: path, reason: "it is not valid UTF-8")
        }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: header)
        } catch {
            throw SafeTensorsError.invalidHeader(path: path, reason: "it is not valid JSON (\(error.localizedDescription))")
        }
        guard let entries = object as? [String: Any] else {
            throw SafeTensorsError.invalidHeader(path: path, reason: "it is not a JSON object")
        }

        var metadata: [String: String] = [:]
        var infos: [SafeTensorInfo] = []
        for (name, value) in entries {
            if name == "__metadata__" {
                guard let dict = value as? [String: Any] else {
                    throw SafeTensorsError.invalidMetadata(path: path, reason: "it is not a JSON object")
                }
                for (k, v) in dict {
                    guard let s = v as? String else {
                        throw SafeTensorsError.invalidMetadata(path: path, reason: "the value of '\(k)' is not a string")
                    }
                    metadata[k] = s
                }
                continue
            }
            infos.append(try Self.parseEntry(name: name, value: value, path: path))
        }

        // Bounds, then exact tiling of the data section.
        for info in infos where info.end > dataSize {
            throw SafeTensorsError.offsetsOutOfBounds(path: path, tensor: info.name, begin: info.begin, end: info.end, dataSize: dataSize)
        }
        infos.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        var position = 0
        for info in infos {
            guard info.begin == position else {
                throw SafeTensorsError.offsetsNotContiguous(path: path, tensor: info.name, begin: info.begin, expected: position)
            }
            position = info.end
        }
        guard position == dataSize else { throw SafeTensorsError.uncoveredData(path: path, covered: position, dataSize: dataSize) }

        self.metadata = metadata
        tensors = Dictionary(infos.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// Validates one header entry: dtype known, shape of non-negative ints, offsets ordered, and
    /// the byte length equal to (product of the shape) * (dtype size).
    private static func parseEntry(name: String, value: Any, path: String) throws -> SafeTensorInfo {
        func invalid(_ reason: String) -> SafeTensorsError { .invalidEntry(path: path, tensor: name, reason: reason) }
        guard let dict = value as? [String: Any] else { throw invalid("its entry is not a JSON object") }
        guard let dtypeName = dict["dtype"] as? String else { throw invalid("'dtype' is missing or not a string") }
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
            throw SafeTensorsError.unknownDType(path: path, tensor: name, dtype: dtypeName)
        }
        guard let shapeValues = dict["shape"] as? [Any] else { throw invalid("'shape' is missing or not an array") }
        let shape = shapeValues.map(Self.jsonInteger)
        guard shape.allSatisfy({ ($0 ?? -1) >= 0 }) else { throw invalid("'shape' must hold non-negative integers") }
        let dims = shape.compactMap { $0 }
        guard let offsetValues = dict["data_offsets"] as? [Any], offsetValues.count == 2,
              let begin = jsonInteger(offsetValues[0]), let end = jsonInteger(offsetValues[1]), begin >= 0, end >= begin else {
            throw invalid("'data_offsets' must be [begin, end] with 0 <= begin <= end")
        }
        var expected = dtype.size
        for d in dims {
            let (product, overflow) = expected.multipliedReportingOverflow(by: d)
            guard !overflow else { throw invalid("the shape \(dims) is implausibly large") }
            expected = product
        }
        guard expected == end - begin else {
            throw SafeTensorsError.byteLengthMismatch(path: path, tensor: name, shape: dims, dtype: dtypeName,
                                                      expected: expected, found: end - begin)
        }
        return SafeTensorInfo(name: name, dtype: dtype, shape: dims, begin: begin, end: end)
    }

    /// A JSON number that is exactly an integer, or nil (NSNumber bridging to Int is exact-only).
    private static func jsonInteger(_ value: Any) -> Int? { value as? Int }

    /// The raw bytes of a tensor.
    public func data(_ name: String) throws -> UnsafeRawBufferPointer {
        guard let info = tensors[name] else { throw SafeTensorsError.missingTensor(path: path, tensor: name) }
        return UnsafeRawBufferPointer(rebasing: map.bytes[(dataStart + info.begin)..<(dataStart + info.end)])
    }

    /// A tensor converted to float32 (from F32, F16 or BF16), checking its shape when `shape` is given.
    public func floats(_ name: String, shape: [Int]? = nil) throws -> [Float] {
        guard let info = tensors[name] else { throw SafeTensorsError.missingTensor(path: path, tensor: name) }
        if let shape, shape != info.shape {
            throw SafeTensorsError.unexpectedShape(path: path, tensor: name, expected: shape, found: info.shape)
        }
        let raw = try data(name)
        let n = info.elementCount
        switch info.dtype {
        case .f32:
            return [Float](unsafeUninitializedCapacity: n) { out, count in
                for i in 0..<n { out[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
                count = n
            }
        case .f16:
            return [Float](unsafeUninitializedCapacity: n) { out, count in
                for i in 0..<n { out[i] = HalfPrecision.float(f16: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
                count = n
            }
        case .bf16:
            return [Float](unsafeUninitializedCapacity: n) { out, count in
                for i in 0..<n { out[i] = HalfPrecision.float(bf16: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
                count = n
            }
        default:
            throw SafeTensorsError.unsupportedConversion(path: path, tensor: name, dtype: info.dtype.rawValue)
        }
    }
}
