/// Why a GGUF file could not be read. Every case names the key or tensor at fault.
public enum GGUFError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String, reason: String)
    case notGGUF(path: String)
    case bigEndian(path: String)
    case unsupportedVersion(UInt32)
    case truncated(what: String, offset: Int, needed: Int, fileSize: Int)
    case implausibleCount(what: String, count: UInt64, limit: UInt64)
    case invalidValueType(key: String, rawType: UInt32)
    case invalidUTF8(what: String)
    case duplicateKey(String)
    case duplicateTensor(String)
    case badAlignment(UInt64)
    case unknownTensorType(tensor: String, rawType: UInt32)
    case badTensorShape(tensor: String, shape: [UInt64])
    case tensorOutOfBounds(tensor: String, offset: UInt64, bytes: UInt64, dataSize: UInt64)
    case misalignedTensor(tensor: String, offset: UInt64, alignment: UInt64)
    case unexpectedTensorOffset(tensor: String, offset: UInt64, expected: UInt64)
    /// A model hyperparameter read from metadata is out of range or inconsistent.
    case badHyperparameter(key: String, value: String, requirement: String)
    case missingKey(String)
    case wrongKeyType(key: String, expected: String, found: String)
    case missingTensor(String)
    case unexpectedTensorShape(tensor: String, expected: [Int], found: [Int])
    case unsupportedTensorType(tensor: String, type: String)

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason): return "cannot open GGUF file \(path): \(reason)"
        case let .notGGUF(path): return "\(path) is not a GGUF file (its first four bytes are not 'GGUF')"
        case let .bigEndian(path): return "\(path) is a big-endian GGUF file; only little-endian files are supported"
        case let .unsupportedVersion(v): return "GGUF version \(v) is not supported (supported: 2 and 3)"
        case let .truncated(what, offset, needed, size):
            return "GGUF file is truncated: reading \(what) needs \(needed) bytes at offset \(offset), but the file has \(size) bytes"
        case let .implausibleCount(what, count, limit):
            return "GGUF \(what) is \(count), more than the plausible limit \(limit): the file is corrupt"
        case let .invalidValueType(key, raw): return "GGUF key '\(key)' has unknown value type \(raw)"
        case let .invalidUTF8(what): return "GGUF \(what) is not valid UTF-8"
        case let .duplicateKey(k): return "GGUF key '\(k)' appears twice"
        case let .duplicateTensor(t): return "GGUF tensor '\(t)' appears twice"
        case let .badAlignment(a): return "GGUF general.alignment is \(a); it must be a power of two between 1 and 65536"
        case let .unknownTensorType(t, raw): return "GGUF tensor '\(t)' has unknown ggml type \(raw)"
        case let .badTensorShape(t, shape): return "GGUF tensor '\(t)' has an invalid shape \(shape)"
        case let .tensorOutOfBounds(t, off, bytes, size):
            return "GGUF tensor '\(t)' (\(bytes) bytes at data offset \(off)) extends past the end of the data section (\(size) bytes)"
        case let .misalignedTensor(t, off, a): return "GGUF tensor '\(t)' data offset \(off) is not a multiple of the alignment \(a)"
        case let .unexpectedTensorOffset(t, off, expected):
            return "GGUF tensor '\(t)' has data offset \(off), expected \(expected) (each tensor follows the previous one, padded to the alignment)"
        case let .badHyperparameter(key, value, requirement):
            return "GGUF metadata key '\(key)' is \(value); it must be \(requirement)"
        case let .missingKey(k): return "GGUF metadata key '\(k)' is required but missing"
        case let .wrongKeyType(k, expected, found): return "GGUF metadata key '\(k)' should be \(expected) but is \(found)"
        case let .missingTensor(t): return "GGUF tensor '\(t)' is required but missing"
        case let .unexpectedTensorShape(t, expected, found):
            return "GGUF tensor '\(t)' has shape \(found), expected \(expected)"
        case let .unsupportedTensorType(t, type):
            return "GGUF tensor '\(t)' has type \(type), which this engine cannot dequantize (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K)"
        }
    }
}
