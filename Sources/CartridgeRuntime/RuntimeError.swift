import CartridgeFormat

/// Errors of the runtime, with what to do about them.
public enum RuntimeError: Error, CustomStringConvertible, Equatable {
    case geometryMismatch(cartridge: String, found: String, expected: String)
    case contextOverflow(needed: Int, available: Int)
    case noCartridges(directory: String)
    case noEmbedder(path: String)
    case noRetrievalVectors(cartridge: String)
    case embeddingMismatch(cartridge: String, found: Int, expected: Int)

    public var description: String {
        switch self {
        case let .geometryMismatch(c, found, expected):
            return "cartridge \(c) has shape \(found) but the model needs \(expected)"
        case let .contextOverflow(needed, available):
            return "the cartridges and the prompt need \(needed) KV slots, more than the model's context of \(available); use fewer or smaller cartridges"
        case let .noCartridges(dir): return "no .cart files in \(dir)"
        case let .noEmbedder(path): return "retrieval needs the embedding model at \(path), which is not installed"
        case let .noRetrievalVectors(c): return "cartridge \(c) carries no retrieval vectors, so it cannot be found by search"
        case let .embeddingMismatch(c, found, expected):
            return "cartridge \(c) has \(found)-dimensional retrieval vectors but the embedder makes \(expected)-dimensional ones"
        }
    }
}
