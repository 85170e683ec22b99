// The fixed header of a .cart file (docs/cart-format.md, "Header"). All integers little-endian.
//
//   offset size field
//        0    8 magic 89 43 41 52 54 0D 0A 1A ("\x89CART\r\n\x1A")
//        8    2 u16 major version (1)
//       10    2 u16 minor version (0)
//       12    4 u32 header length in bytes (192 for version 1.0)
//       16   32 SHA-256 of header bytes [0, header length) with bytes 16..<48 set to zero
//       48    1 u8  payload codec (1 = zstd)
//       49    1 u8  tensor dtype (1 = f32, 2 = f16, 3 = bf16, 4 = q8_0, 5 = q4_0)
//       50    6 reserved, zero
//       56    8 u64 file length in bytes
//       64    8 u64 metadata length
//       72    8 u64 retrieval block length
//       80    8 u64 payload length (compressed)
//       88    8 u64 payload raw length (decompressed)
//       96   32 SHA-256 of the metadata
//      128   32 SHA-256 of the retrieval block
//      160   32 SHA-256 of the payload (compressed bytes)
//      192      end; the metadata starts at the header length

import CartridgeKernels
import Crypto

/// The decoded fixed header of a `.cart` file.
public struct CartHeader: Sendable, Equatable {
    /// The eight bytes every `.cart` file starts with: `\x89CART\r\n\x1A`.
    public static let magic: [UInt8] = [0x89, 0x43, 0x41, 0x52, 0x54, 0x0D, 0x0A, 0x1A]
    /// The major version this build writes and reads.
    public static let currentMajorVersion = 1
    /// The minor version this build writes (it reads every minor version of its major).
    public static let currentMinorVersion = 0
    /// Bytes 0..<48 (magic, versions, header length, header checksum) keep their meaning in every version.
    public static let fixedPrefixLength = 48
    /// Length of the version 1.0 header.
    public static let version1Length = 192
    /// Largest header length a reader accepts.
    public static let maximumLength = 65536
    /// Payload codec code of zstd.
    public static let zstdCodec = 1

    public var majorVersion: Int
    public var minorVersion: Int
    public var headerLength: Int
    /// Payload codec: 1 = zstd.
    public var codec: Int
    public var dtype: TensorDType
    public var fileLength: Int
    public var metadataLength: Int
    public var retrievalLength: Int
    public var payloadLength: Int
    public var payloadRawLength: Int
    /// Lower-case hexadecimal SHA-256 digests.
    public var headerSHA256: String
    public var metadataSHA256: String
    public var retrievalSHA256: String
    public var payloadSHA256: String

    /// Where the metadata JSON starts.
    public var metadataOffset: Int { headerLength }
    /// Where the retrieval block starts.
    public var retrievalOffset: Int { headerLength + metadataLength }
    /// Where the compressed payload starts.
    public var payloadOffset: Int { headerLength + metadataLength + retrievalLength }
}

/// The SHA-256 digest of `bytes`.
func sha256(_ bytes: [UInt8]) -> [UInt8] {
    Array(SHA256.hash(data: bytes))
}

/// The SHA-256 digest of part of `bytes`.
func sha256(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
    bytes.withUnsafeBytes { Array(SHA256.hash(data: $0)) }
}

extension CartHeader {
    /// The 192 bytes of a version 1.0 header with its checksum filled in.
    static func encode(dtype: TensorDType, metadataLength: Int, retrievalLength: Int, payloadLength: Int, payloadRawLength: Int,
                       metadataSHA256: [UInt8], retrievalSHA256: [UInt8], payloadSHA256: [UInt8]) -> [UInt8] {
        let fileLength = version1Length + metadataLength + retrievalLength + payloadLength
        var h: [UInt8] = magic
        h.appendLE(UInt16(currentMajorVersion))
        h.appendLE(UInt16(currentMinorVersion))
        h.appendLE(UInt32(version1Length))
        h += [UInt8](repeating: 0, count: 32)  // header checksum, filled in below
        h.append(UInt8(zstdCodec))
        h.append(dtype.headerCode)
        h += [UInt8](repeating: 0, count: 6)
        for v in [fileLength, metadataLength, retrievalLength, payloadLength, payloadRawLength] { h.appendLE(UInt64(v)) }
        h += metadataSHA256
        h += retrievalSHA256
        h += payloadSHA256
        invariant(h.count == version1Length)
        h.replaceSubrange(16..<48, with: sha256(h))
        return h
    }

    /// The header checksum of `header` (its first `headerLength` bytes), computed with bytes
    /// 16..<48 taken as zero.
    static func checksum(of header: [UInt8]) -> [UInt8] {
        var copy = header
        for i in 16..<min(fixedPrefixLength, copy.count) { copy[i] = 0 }
        return sha256(copy)
    }

    /// Reads and checks the header of `source`: magic, header checksum, version, codec, dtype,
    /// reserved bytes, and every length against the real file size. Nothing else is read.
    static func read(from source: ByteSource, path: String) throws -> CartHeader {
        let size = source.size
        let start = try source.read(offset: 0, count: min(size, fixedPrefixLength))
        let k = min(start.count, magic.count)
        guard start[0..<k].elementsEqual(magic[0..<k]) else { throw CartError.notACartridge(path: path) }
        guard size >= fixedPrefixLength else {
            throw CartError.truncated(path: path, expectedBytes: fixedPrefixLength, actualBytes: size)
        }
        let headerLength = Int(start.readLE(12, 4))
        guard headerLength >= fixedPrefixLength && headerLength <= maximumLength else {
            throw CartError.corruptHeader(path: path, reason: "the header length field is \(headerLength), outside \(fixedPrefixLength)...\(maximumLength)")
        }
        guard headerLength <= size else {
            throw CartError.truncated(path: path, expectedBytes: headerLength, actualBytes: size)
        }
        let bytes = try source.read(offset: 0, count: headerLength)
        guard checksum(of: bytes) == Array(bytes[16..<48]) else { throw CartError.headerChecksumMismatch(path: path) }

        // The header is what its writer wrote; now check that this reader understands it.
        let major = Int(bytes.readLE(8, 2))
        let minor = Int(bytes.readLE(10, 2))
        guard major == currentMajorVersion else {
            throw CartError.unsupportedVersion(found: major, supported: currentMajorVersion)
        }
        guard headerLength >= version1Length else {
            throw CartError.corruptHeader(path: path, reason: "a version 1 header has at least \(version1Length) bytes, the length field says \(headerLength)")
        }
        let codec = Int(bytes[48])
        guard codec == zstdCodec else { throw CartError.unsupportedCodec(path: path, code: codec) }
        guard let dtype = TensorDType(headerCode: bytes[49]) else { throw CartError.unsupportedDType(path: path, code: Int(bytes[49])) }
        guard bytes[50..<56].allSatisfy({ $0 == 0 }) else {
            throw CartError.corruptHeader(path: path, reason: "reserved bytes 50..<56 are not zero")
        }
        // Lengths: each fits in the real file, and they add up to it exactly.
        var lengths: [Int] = []
        for (offset, name) in [(56, "file"), (64, "metadata"), (72, "retrieval block"), (80, "payload"), (88, "payload raw")] {
            let v = bytes.readLE(offset, 8)
            guard v <= UInt64(Int.max) else {
                throw CartError.corruptHeader(path: path, reason: "the \(name) length field is \(v), larger than any file")
            }
            lengths.append(Int(v))
        }
        let (fileLength, metadataLength, retrievalLength, payloadLength, payloadRawLength) =
            (lengths[0], lengths[1], lengths[2], lengths[3], lengths[4])
        if size < fileLength { throw CartError.truncated(path: path, expectedBytes: fileLength, actualBytes: size) }
        if size > fileLength { throw CartError.trailingBytes(path: path, expectedBytes: fileLength, actualBytes: size) }
        guard let sum = checkedSum([headerLength, metadataLength, retrievalLength, payloadLength]), sum == fileLength else {
            throw CartError.corruptHeader(path: path, reason: "header (\(headerLength)) + metadata (\(metadataLength)) + retrieval (\(retrievalLength)) + payload (\(payloadLength)) bytes do not add up to the file length \(fileLength)")
        }
        // A zstd frame cannot expand more than 32768-fold: refuse to allocate more than that.
        guard payloadRawLength / Zstd.maximumRatio <= payloadLength else {
            throw CartError.corruptHeader(path: path, reason: "\(payloadLength) compressed payload bytes cannot hold \(payloadRawLength) raw bytes")
        }
        return CartHeader(
            majorVersion: major, minorVersion: minor, headerLength: headerLength, codec: codec, dtype: dtype,
            fileLength: fileLength, metadataLength: metadataLength, retrievalLength: retrievalLength,
            payloadLength: payloadLength, payloadRawLength: payloadRawLength,
            headerSHA256: Hex.string(bytes[16..<48]), metadataSHA256: Hex.string(bytes[96..<128]),
            retrievalSHA256: Hex.string(bytes[128..<160]), payloadSHA256: Hex.string(bytes[160..<192]))
    }
}

/// The sum of non-negative terms, or nil when it overflows `Int`.
func checkedSum(_ terms: [Int]) -> Int? {
    var s = 0
    for t in terms {
        guard t >= 0 else { return nil }
        let (r, o) = s.addingReportingOverflow(t)
        if o { return nil }
        s = r
    }
    return s
}
