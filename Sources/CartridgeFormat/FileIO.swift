// Plain POSIX file access: positioned reads of a file whose size is known up front, and the
// atomic write (temporary file in the same directory, fsync, rename, fsync the directory).

import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Bytes that can be read at any offset; `size` is known before anything is read.
protocol ByteSource {
    var size: Int { get }
    /// Exactly `count` bytes at `offset`; callers check `offset + count <= size` first.
    func read(offset: Int, count: Int) throws -> [UInt8]
}

/// A byte array as a source (in-memory decoding and tests).
struct MemorySource: ByteSource {
    let bytes: [UInt8]
    let path: String
    var size: Int { bytes.count }

    func read(offset: Int, count: Int) throws -> [UInt8] {
        guard offset >= 0, count >= 0, offset <= bytes.count, count <= bytes.count - offset else {
            throw CartError.truncated(path: path, expectedBytes: offset + count, actualBytes: bytes.count)
        }
        return Array(bytes[offset..<(offset + count)])
    }
}

/// An open regular file, read with `pread`. Closed when released.
final class FileSource: ByteSource {
    let path: String
    let size: Int
    private let fd: Int32

    init(path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CartError.io(path: path, reason: "cannot open for reading: \(lastError())") }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let reason = lastError()
            close(fd)
            throw CartError.io(path: path, reason: "cannot read file status: \(reason)")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw CartError.io(path: path, reason: "not a regular file")
        }
        self.fd = fd
        self.path = path
        self.size = Int(st.st_size)
    }

    deinit { close(fd) }

    func read(offset: Int, count: Int) throws -> [UInt8] {
        guard offset >= 0, count >= 0, offset <= size, count <= size - offset else {
            throw CartError.truncated(path: path, expectedBytes: offset + count, actualBytes: size)
        }
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        try out.withUnsafeMutableBytes { buffer in
            guard let base = buffer.baseAddress else { return }
            while done < count {
                let n = pread(fd, base + done, count - done, off_t(offset + done))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw CartError.io(path: path, reason: "read failed: \(lastError())")
                }
                if n == 0 {  // the file shrank while we read it
                    throw CartError.truncated(path: path, expectedBytes: offset + count, actualBytes: offset + done)
                }
                done += n
            }
        }
        return out
    }
}

/// The description of the current `errno`.
func lastError() -> String {
    String(cString: strerror(errno))
}

/// Writes `bytes` to `path` so that readers see either the old file or the complete new one:
/// a temporary file in the same directory is written, flushed to disk, renamed over `path`,
/// and the directory is flushed. The temporary file is removed on any failure.
/// `beforeRename` runs with the temporary file's path once it is complete (tests inject failures).
/// Every file that must survive a crash whole (cartridges, a compile's job and checkpoint) is
/// written through this function.
///
/// - Throws: `CartError.io` naming the file or directory and the system's reason.
public func atomicWrite(_ bytes: [UInt8], to path: String, beforeRename: (String) throws -> Void = { _ in }) throws {
    let url = URL(fileURLWithPath: path)
    let directory = url.deletingLastPathComponent().path
    let name = url.lastPathComponent
    let temporary = directory + "/." + name + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"

    let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw CartError.io(path: path, reason: "cannot create a temporary file in \(directory): \(lastError())") }
    var closed = false
    var renamed = false
    defer {
        if !closed { close(fd) }
        if !renamed { unlink(temporary) }
    }
    var done = 0
    try bytes.withUnsafeBytes { buffer in
        guard let base = buffer.baseAddress else { return }
        while done < buffer.count {
            let n = write(fd, base + done, buffer.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw CartError.io(path: path, reason: "write failed: \(lastError())")
            }
            done += n
        }
    }
    guard fsync(fd) == 0 else { throw CartError.io(path: path, reason: "fsync failed: \(lastError())") }
    closed = true
    guard close(fd) == 0 else { throw CartError.io(path: path, reason: "close failed: \(lastError())") }
    try beforeRename(temporary)
    guard rename(temporary, path) == 0 else { throw CartError.io(path: path, reason: "cannot rename the temporary file into place: \(lastError())") }
    renamed = true
    // Make the rename itself durable. Some file systems cannot fsync a directory (EINVAL).
    let dfd = open(directory, O_RDONLY | O_CLOEXEC)
    guard dfd >= 0 else { throw CartError.io(path: directory, reason: "cannot open the directory to flush it: \(lastError())") }
    defer { close(dfd) }
    if fsync(dfd) != 0 && errno != EINVAL {
        throw CartError.io(path: directory, reason: "fsync of the directory failed: \(lastError())")
    }
}

// MARK: - Little-endian fields

extension Array where Element == UInt8 {
    mutating func appendLE(_ v: UInt16) { for i in 0..<2 { append(UInt8(truncatingIfNeeded: v >> (8 * UInt16(i)))) } }
    mutating func appendLE(_ v: UInt32) { for i in 0..<4 { append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) } }
    mutating func appendLE(_ v: UInt64) { for i in 0..<8 { append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) } }

    /// Little-endian integer of `width` bytes at `offset`; the caller has checked the bounds.
    func readLE(_ offset: Int, _ width: Int) -> UInt64 {
        var v: UInt64 = 0
        for i in 0..<width { v |= UInt64(self[offset + i]) << (8 * UInt64(i)) }
        return v
    }

    /// Overwrites `width` bytes at `offset` with `v`, little-endian.
    mutating func writeLE(_ v: UInt64, at offset: Int, width: Int) {
        for i in 0..<width { self[offset + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) }
    }
}
