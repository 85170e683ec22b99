import CartridgeFormat
import Foundation
import Logging

/// A directory of `.cart` files: every file's metadata and retrieval passages are read (and
/// verified) and indexed together when the library opens (word frequencies count every file);
/// tensors load on first use and stay in an LRU cache bounded by `memoryBudget` bytes.
public final class CartridgeLibrary: @unchecked Sendable {
    /// One file of the library.
    public struct Entry: Sendable {
        /// File name without `.cart`.
        public var name: String
        public var url: URL
        public var metadata: CartridgeMetadata
    }

    public let directory: URL
    public let entries: [Entry]
    public let memoryBudget: Int
    private let expectedModel: ModelIdentity
    private var index: any RetrievalIndex
    private var cache: [String: LoadedCartridge] = [:]
    private var recency: [String] = []  // least recently used first
    private let lock = NSLock()
    private let logger: Logger

    /// Opens every `*.cart` in `directory` (sorted by name). Files for another model, or that fail
    /// verification, are an error naming the file; `skipInvalid` logs and skips them instead.
    public init(directory: URL, model: ModelIdentity, embeddingDimension: Int, memoryBudget: Int = 1 << 30,
                skipInvalid: Bool = false, logger: Logger = Logger(label: "cartridges.library")) throws {
        self.directory = directory
        self.memoryBudget = memoryBudget
        self.expectedModel = model
        self.logger = logger
        let files = try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "cart" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        var entries: [Entry] = []
        var index = ExactIndex(dimension: embeddingDimension)
        for url in files {
            let name = url.deletingPathExtension().lastPathComponent
            do {
                let summary = try CartFile.readSummary(from: url, expectedModel: model)
                let m = summary.metadata
                guard !m.chunks.isEmpty else { throw RuntimeError.noRetrievalVectors(cartridge: name) }
                guard m.embeddingDimension == embeddingDimension else {
                    throw RuntimeError.embeddingMismatch(cartridge: name, found: m.embeddingDimension, expected: embeddingDimension)
                }
                _ = index.add(vectors: summary.retrievalVectors, words: m.chunks.map(\.terms))
                entries.append(Entry(name: name, url: url, metadata: m))
            } catch {
                if skipInvalid {
                    logger.warning("skipping \(url.lastPathComponent): \(error)")
                } else {
                    throw error
                }
            }
        }
        guard !entries.isEmpty else { throw RuntimeError.noCartridges(directory: directory.path) }
        self.entries = entries
        self.index = index
    }

    /// The k entries whose passages best match a query, best first (scored as `ExactIndex` says).
    public func search(_ query: RetrievalQuery, k: Int) -> [(entry: Entry, score: Float)] {
        index.search(query, k: k).map { (entries[$0.cartridge], $0.score) }
    }

    /// The tensors of an entry, from the cache or the file (verified against the model).
    public func load(_ entry: Entry) throws -> LoadedCartridge {
        lock.lock()
        defer { lock.unlock() }
        if let c = cache[entry.name] {
            touch(entry.name)
            return c
        }
        let loaded = LoadedCartridge(name: entry.name, cartridge: try CartFile.read(from: entry.url, expectedModel: expectedModel))
        cache[entry.name] = loaded
        touch(entry.name)
        // evict least recently used until within budget (never the one just loaded)
        while cachedBytes > memoryBudget, let oldest = recency.first, oldest != entry.name {
            recency.removeFirst()
            cache[oldest] = nil
            logger.debug("evicted cartridge \(oldest) from memory")
        }
        return loaded
    }

    /// Bytes of tensors held in memory now.
    public var cachedBytes: Int { cache.values.reduce(0) { $0 + $1.bytes } }

    /// Names of the cartridges held in memory, least recently used first.
    public var cachedNames: [String] {
        lock.lock()
        defer { lock.unlock() }
        return recency
    }

    private func touch(_ name: String) {
        recency.removeAll { $0 == name }
        recency.append(name)
    }
}
