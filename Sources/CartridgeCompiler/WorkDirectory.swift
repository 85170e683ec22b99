import CartridgeFormat
import CartridgeKernels
import CartridgeTraining
import Crypto
import Foundation

/// Errors about a compile's work directory.
public enum WorkDirectoryError: Error, CustomStringConvertible, Equatable {
    case settingsChanged(path: String)
    case corruptCheckpoint(path: String, reason: String)
    case corruptSamples(path: String, line: Int, reason: String)
    case trainedPast(path: String, step: Int, steps: Int)
    case io(path: String, reason: String)

    public var description: String {
        switch self {
        case let .settingsChanged(p):
            return "the work directory \(p) holds a compile of other documents, model or settings; remove it, or use another work directory"
        case let .corruptCheckpoint(p, r): return "checkpoint \(p) is unusable (\(r)); remove it to restart training from the last synthesized data"
        case let .corruptSamples(p, line, r):
            return "\(p) line \(line) is unusable (\(r)); the lines before it are intact: keep them and remove the rest to synthesize again from there"
        case let .trainedPast(p, step, steps):
            return "the work directory \(p) has already trained \(step) steps, more than the \(steps) asked for; ask for \(step) steps or more, or remove \(p)/checkpoint.bin to retrain from the synthesized data"
        case let .io(p, r): return "cannot write \(p): \(r)"
        }
    }
}

/// Everything a compile keeps between runs, so that an interrupted compile (even `kill -9`)
/// resumes without losing finished work:
/// - `job.json`: the settings, corpus and model hashes this directory belongs to (all settings but
///   the step count, so that a finished compile can be run again with more steps to train longer);
/// - `samples.jsonl`: one line per finished group of conversations, appended and fsync'ed;
///   a torn last line (a crash mid-write) is dropped on resume;
/// - `checkpoint.bin`: prefix, Adam state and step, replaced atomically (temp, fsync, rename);
/// - `log.jsonl`: training and validation losses by step.
public final class WorkDirectory: @unchecked Sendable {
    public let url: URL

    public init(url: URL, job: Data) throws {
        self.url = url
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        let jobFile = url.appendingPathComponent("job.json")
        if let existing = FileManager.default.contents(atPath: jobFile.path) {
            guard existing == job else { throw WorkDirectoryError.settingsChanged(path: url.path) }
        } else {
            try Self.atomicWrite(job, to: jobFile)
        }
    }

    // MARK: samples

    var samplesFile: URL { url.appendingPathComponent("samples.jsonl") }

    /// The finished groups, in order. A torn last line (a crash mid-write) is dropped and truncated
    /// away; any other line that does not decode, or holds a token id outside `0..<vocabSize`, is
    /// an error naming the line, and nothing is truncated.
    public func loadGroups(vocabSize: Int) throws -> [[SelfStudySample]] {
        guard let data = FileManager.default.contents(atPath: samplesFile.path) else { return [] }
        var groups: [[SelfStudySample]] = []
        var lineStart = 0
        let decoder = JSONDecoder()
        for (i, byte) in data.enumerated() where byte == 0x0A {
            let line = groups.count + 1
            guard let g = try? decoder.decode([SelfStudySample].self, from: data[lineStart..<i]) else {
                throw WorkDirectoryError.corruptSamples(path: samplesFile.path, line: line, reason: "not a JSON list of conversations")
            }
            if let problem = g.lazy.compactMap({ $0.problem(vocabSize: vocabSize) }).first {
                throw WorkDirectoryError.corruptSamples(path: samplesFile.path, line: line, reason: problem)
            }
            groups.append(g)
            lineStart = i + 1
        }
        if lineStart < data.count {  // a last line without its newline: the write was cut short
            let h = try FileHandle(forWritingTo: samplesFile)
            try h.truncate(atOffset: UInt64(lineStart))
            try h.synchronize()
            try h.close()
        }
        return groups
    }

    /// Appends one group as one line and makes it durable before returning.
    public func append(group: [SelfStudySample]) throws {
        var line = try JSONEncoder().encode(group)
        line.append(0x0A)
        if !FileManager.default.fileExists(atPath: samplesFile.path) {
            FileManager.default.createFile(atPath: samplesFile.path, contents: nil)
        }
        let h = try FileHandle(forWritingTo: samplesFile)
        defer { try? h.close() }
        try h.seekToEnd()
        try h.write(contentsOf: line)
        try h.synchronize()
    }

    // MARK: checkpoint

    var checkpointFile: URL { url.appendingPathComponent("checkpoint.bin") }
    private static let checkpointMagic: UInt32 = 0x5450_4B43  // "CKPT"

    /// Saves the prefix tensors, the optimizer state and the step, atomically and checksummed.
    public func saveCheckpoint(prefix: TrainablePrefix, adam: Adam, step: Int) throws {
        var d = Data()
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
        put(Self.checkpointMagic)
        put(UInt64(step))
        put(UInt64(prefix.keys.count))
        d.append(UnsafeBufferPointer(start: prefix.keys.pointer, count: prefix.keys.count))
        d.append(UnsafeBufferPointer(start: prefix.values.pointer, count: prefix.values.count))
        let opt = adam.serialized()
        put(UInt64(opt.count))
        d.append(opt)
        d.append(contentsOf: SHA256.hash(data: d))
        try Self.atomicWrite(d, to: checkpointFile)
    }

    /// Restores a checkpoint into the prefix and optimizer; returns its step, or nil if none exists.
    public func loadCheckpoint(prefix: TrainablePrefix, adam: Adam) throws -> Int? {
        guard let d = FileManager.default.contents(atPath: checkpointFile.path) else { return nil }
        let path = checkpointFile.path
        guard d.count > 60 else { throw WorkDirectoryError.corruptCheckpoint(path: path, reason: "truncated") }
        let body = d.prefix(d.count - 32)
        guard Data(SHA256.hash(data: body)) == d.suffix(32) else { throw WorkDirectoryError.corruptCheckpoint(path: path, reason: "checksum mismatch") }
        return try body.withUnsafeBytes { raw -> Int in
            func u64(_ at: Int) -> UInt64 { UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
            guard UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt32.self)) == Self.checkpointMagic else {
                throw WorkDirectoryError.corruptCheckpoint(path: path, reason: "not a checkpoint")
            }
            guard let step = Int(exactly: u64(4)), step >= 0 else { throw WorkDirectoryError.corruptCheckpoint(path: path, reason: "step \(u64(4))") }
            guard u64(12) == UInt64(prefix.keys.count), 20 + 8 * prefix.keys.count + 8 <= body.count else {
                throw WorkDirectoryError.corruptCheckpoint(path: path, reason: "it holds \(u64(12)) values per tensor, the cartridge needs \(prefix.keys.count)")
            }
            let n = prefix.keys.count
            UnsafeMutableRawPointer(prefix.keys.pointer).copyMemory(from: raw.baseAddress! + 20, byteCount: 4 * n)
            UnsafeMutableRawPointer(prefix.values.pointer).copyMemory(from: raw.baseAddress! + 20 + 4 * n, byteCount: 4 * n)
            guard let optLength = Int(exactly: u64(20 + 8 * n)), 28 + 8 * n + optLength == body.count else { throw WorkDirectoryError.corruptCheckpoint(path: path, reason: "bad optimizer length") }
            try adam.restore(from: Data(body[(28 + 8 * n)...]))
            return step
        }
    }

    // MARK: log

    /// Appends one JSON object as a line of log.jsonl.
    public func log(_ object: [String: Any]) {
        guard let line = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        let file = url.appendingPathComponent("log.jsonl")
        if !FileManager.default.fileExists(atPath: file.path) { FileManager.default.createFile(atPath: file.path, contents: nil) }
        guard let h = try? FileHandle(forWritingTo: file) else { return }
        defer { try? h.close() }
        _ = try? h.seekToEnd()
        try? h.write(contentsOf: line + Data([0x0A]))
    }

    /// Writes `data` atomically (temporary file, fsync, rename, fsync of the directory: the
    /// format's `atomicWrite`), reporting failures as this directory's errors.
    static func atomicWrite(_ data: Data, to url: URL) throws {
        do {
            try CartridgeFormat.atomicWrite([UInt8](data), to: url.path)
        } catch let CartError.io(path, reason) {
            throw WorkDirectoryError.io(path: path, reason: reason)
        }
    }
}
