import CartridgeKernels
import Crypto
import Foundation
import Logging

/// One text document read from disk for a cartridge.
public struct Document: Sendable, Equatable {
    /// Path relative to the ingested root (the file name for a single file).
    public var path: String
    public var text: String
    /// SHA-256 of the file's bytes, hex.
    public var sha256: String
    public var bytes: Int

    public init(path: String, text: String, sha256: String, bytes: Int) {
        self.path = path
        self.text = text
        self.sha256 = sha256
        self.bytes = bytes
    }
}

/// Errors from reading a corpus.
public enum IngestError: Error, CustomStringConvertible, Equatable {
    case notFound(String)
    case emptyCorpus(String)

    public var description: String {
        switch self {
        case let .notFound(p): return "no file or folder at \(p)"
        case let .emptyCorpus(p): return "\(p) holds no readable text documents (empty, binary and hidden files are skipped)"
        }
    }
}

/// Reads the text documents of a file or a folder (recursively, in a deterministic order):
/// plain text, Markdown, reStructuredText, source code and any other UTF-8 text. Empty, binary
/// and unreadable files are skipped with a warning naming them; invalid UTF-8 is decoded lossily
/// with a warning. Hidden files and folders (name starting with ".") are skipped.
public enum DocumentIngest {
    public static func read(_ root: URL, logger: Logger = Logger(label: "cartridges.ingest")) throws -> [Document] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root.path, isDirectory: &isDir) else { throw IngestError.notFound(root.path) }
        var files: [(URL, String)] = []
        if isDir.boolValue {
            let base = root.standardizedFileURL.path
            let e = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey],
                                                   options: [.skipsHiddenFiles])
            while let u = e?.nextObject() as? URL {
                guard (try? u.resourceValues(forKeys: [.isRegularFileKey]))?.isRegularFile == true else { continue }
                var rel = u.standardizedFileURL.path
                if rel.hasPrefix(base + "/") { rel.removeFirst(base.count + 1) }
                files.append((u, rel))
            }
            files.sort { $0.1.utf8.lexicographicallyPrecedes($1.1.utf8) }
        } else {
            files = [(root, root.lastPathComponent)]
        }
        var docs: [Document] = []
        for (url, rel) in files {
            guard let data = FileManager.default.contents(atPath: url.path) else {
                logger.warning("skipping \(rel): cannot read it")
                continue
            }
            if let d = document(data: data, path: rel, logger: logger) { docs.append(d) }
        }
        guard !docs.isEmpty else { throw IngestError.emptyCorpus(root.path) }
        return docs
    }

    /// Decodes one file's bytes, or nil (with a warning) when it is empty or binary.
    public static func document(data: Data, path: String, logger: Logger = Logger(label: "cartridges.ingest")) -> Document? {
        if data.isEmpty || data.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            logger.warning("skipping \(path): empty")
            return nil
        }
        if isBinary(data) {
            logger.warning("skipping \(path): binary content")
            return nil
        }
        let text: String
        if let s = String(data: data, encoding: .utf8) {
            text = s
        } else {
            logger.warning("\(path) is not valid UTF-8; invalid bytes were replaced with U+FFFD")
            text = String(decoding: data, as: UTF8.self)
        }
        return Document(path: path, text: text, sha256: Hex.string(SHA256.hash(data: data)), bytes: data.count)
    }

    /// NUL bytes, or many control bytes in the first 8 KiB, mark a file as binary.
    static func isBinary(_ data: Data) -> Bool {
        let head = data.prefix(8192)
        if head.contains(0) { return true }
        let control = head.filter { $0 < 0x20 && $0 != 0x09 && $0 != 0x0A && $0 != 0x0D && $0 != 0x0C }.count
        return control * 20 > head.count
    }
}
