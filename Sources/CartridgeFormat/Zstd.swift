// One-shot zstd compression of the tensor payload, with every size checked.

import CZstd

/// A zstd failure, described for people.
struct ZstdFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

enum Zstd {
    /// The range of compression levels the linked library accepts.
    static var levels: ClosedRange<Int> { Int(ZSTD_minCLevel())...Int(ZSTD_maxCLevel()) }

    /// Largest decompressed/compressed ratio a zstd frame can reach: an RLE block of 4 bytes
    /// (3-byte block header + 1 byte) expands to at most 128 KiB.
    static let maximumRatio = 32768

    /// One zstd frame holding `source`, with its content size in the frame header.
    static func compress(_ source: [UInt8], level: Int) -> Result<[UInt8], ZstdFailure> {
        let bound = ZSTD_compressBound(source.count)
        if ZSTD_isError(bound) != 0 { return .failure(ZstdFailure(errorName(bound))) }
        var out = [UInt8](repeating: 0, count: bound)
        let written = out.withUnsafeMutableBytes { dst in
            source.withUnsafeBytes { src in
                ZSTD_compress(dst.baseAddress, dst.count, src.baseAddress, src.count, Int32(level))
            }
        }
        if ZSTD_isError(written) != 0 { return .failure(ZstdFailure(errorName(written))) }
        out.removeSubrange(written...)
        return .success(out)
    }

    /// The content size declared in the frame header; a failure message when the frame header
    /// is invalid or declares no size.
    static func declaredContentSize(_ frame: [UInt8]) -> Result<UInt64, ZstdFailure> {
        let size = frame.withUnsafeBytes { ZSTD_getFrameContentSize($0.baseAddress, $0.count) }
        if size == UInt64.max { return .failure(ZstdFailure("the zstd frame does not declare its content size")) }  // ZSTD_CONTENTSIZE_UNKNOWN
        if size == UInt64.max - 1 { return .failure(ZstdFailure("the payload is not a valid zstd frame")) }  // ZSTD_CONTENTSIZE_ERROR
        return .success(UInt64(size))
    }

    /// The size of the first frame in `frame`, or a failure message.
    static func frameLength(_ frame: [UInt8]) -> Result<Int, ZstdFailure> {
        let n = frame.withUnsafeBytes { ZSTD_findFrameCompressedSize($0.baseAddress, $0.count) }
        if ZSTD_isError(n) != 0 { return .failure(ZstdFailure("the zstd frame is damaged (\(errorName(n)))")) }
        return .success(n)
    }

    /// Decompresses one frame that must produce exactly `rawCount` bytes.
    static func decompress(_ frame: [UInt8], rawCount: Int) -> Result<[UInt8], ZstdFailure> {
        var out = [UInt8](repeating: 0, count: rawCount)
        let n = out.withUnsafeMutableBytes { dst in
            frame.withUnsafeBytes { src in
                ZSTD_decompress(dst.baseAddress, dst.count, src.baseAddress, src.count)
            }
        }
        if ZSTD_isError(n) != 0 { return .failure(ZstdFailure("zstd cannot decompress the payload (\(errorName(n)))")) }
        if n != rawCount { return .failure(ZstdFailure("the payload decompresses to \(n) bytes, not the declared \(rawCount)")) }
        return .success(out)
    }

    private static func errorName(_ code: Int) -> String {
        guard let name = ZSTD_getErrorName(code) else { return "error \(code)" }
        return String(cString: name)
    }
}
