import CartridgeFormat
import CartridgeRegistry
import CartridgeRuntime
import Foundation

/// `"cartridges": "auto"`: the registry's names whose retrieval passages best match the question.
/// The index covers each name's preferred version (its `stable` alias, else its newest) and is
/// rebuilt when that set of versions changes, so pushes and alias moves reach it at once.
final class AutoRouter: @unchecked Sendable {
    private let runtime: CartridgeRuntime
    private let registry: any CartridgeRegistry
    /// The versions the index was built for, the index, and the versions it holds (those with
    /// retrieval vectors), in index order.
    private var built: (resolved: [CartridgeVersion], index: ExactIndex, versions: [CartridgeVersion])?
    private let lock = NSLock()

    init(runtime: CartridgeRuntime, registry: any CartridgeRegistry) {
        self.runtime = runtime
        self.registry = registry
    }

    /// The `top` best versions for `query`, best first.
    func route(_ query: String, top: Int) throws -> [CartridgeVersion] {
        let embedder = try runtime.embedder()
        let q = try runtime.query(query)
        let current = try registry.names().map { try registry.resolve(CartridgeReference(name: $0), stickyKey: nil) }
        lock.lock()
        defer { lock.unlock() }
        if built?.resolved != current {
            var index = ExactIndex(dimension: embedder.dimension)
            var kept: [CartridgeVersion] = []
            for v in current {
                guard let summary = try? CartFile.readSummary(from: registry.file(of: v), expectedModel: runtime.identity),
                      summary.metadata.embeddingDimension == embedder.dimension, !summary.retrievalVectors.isEmpty else { continue }
                _ = index.add(vectors: summary.retrievalVectors, words: summary.metadata.chunks.map(\.terms))
                kept.append(v)
            }
            built = (current, index, kept)
        }
        let (_, index, versions) = built!
        return index.search(q, k: top).map { versions[$0.cartridge] }
    }
}
