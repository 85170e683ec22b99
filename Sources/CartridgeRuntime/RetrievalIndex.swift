import CartridgeKernels

/// A cartridge found for a query.
public struct RetrievalMatch: Sendable, Equatable {
    /// Index of the cartridge in the index.
    public var cartridge: Int
    /// Best cosine similarity over the cartridge's passage vectors.
    public var score: Float
    /// The passage that scored best.
    public var passage: Int
}

/// Finds cartridges for a query vector. Scores are the maximum cosine similarity over each
/// cartridge's passage vectors (vectors are L2-normalized, so cosine is a dot product).
/// `ExactIndex` searches every vector; an approximate index can replace it behind this protocol.
public protocol RetrievalIndex: Sendable {
    var dimension: Int { get }
    var cartridgeCount: Int { get }
    /// Adds one cartridge's passage vectors, (n, dimension) row-major; returns its index.
    mutating func add(vectors: [Float]) -> Int
    /// The k best cartridges, best first (ties: lower index first).
    func search(_ query: [Float], k: Int) -> [RetrievalMatch]
}

/// Exact search: one matrix-vector product (BLAS) over all passage vectors.
public struct ExactIndex: RetrievalIndex, @unchecked Sendable {
    public let dimension: Int
    /// (passages, dimension) all passage vectors
    private var vectors: [Float] = []
    /// owning cartridge of each passage
    private var owner: [Int] = []
    /// first passage of each cartridge
    private var firstPassage: [Int] = []
    public private(set) var cartridgeCount = 0

    public init(dimension: Int) { self.dimension = dimension }

    public mutating func add(vectors v: [Float]) -> Int {
        invariant(v.count % dimension == 0, "vectors must be (n, dimension)")
        let id = cartridgeCount
        firstPassage.append(owner.count)
        owner += Array(repeating: id, count: v.count / dimension)
        vectors += v
        cartridgeCount += 1
        return id
    }

    public var passageCount: Int { owner.count }

    public func search(_ query: [Float], k: Int) -> [RetrievalMatch] {
        invariant(query.count == dimension)
        let n = owner.count
        guard n > 0, k > 0 else { return [] }
        var scores = [Float](repeating: 0, count: n)
        vectors.withUnsafeBufferPointer { v in
            query.withUnsafeBufferPointer { q in
                scores.withUnsafeMutableBufferPointer { s in
                    BLAS.gemv(m: n, n: dimension, a: v.baseAddress!, lda: dimension, x: q.baseAddress!, y: s.baseAddress!)
                }
            }
        }
        var best = [RetrievalMatch](repeating: RetrievalMatch(cartridge: 0, score: -.infinity, passage: -1), count: cartridgeCount)
        for i in 0..<n where scores[i] > best[owner[i]].score {
            best[owner[i]] = RetrievalMatch(cartridge: owner[i], score: scores[i], passage: i - firstPassage[owner[i]])
        }
        for c in 0..<cartridgeCount { best[c].cartridge = c }
        return Array(best.filter { $0.passage >= 0 }
            .sorted { $0.score != $1.score ? $0.score > $1.score : $0.cartridge < $1.cartridge }
            .prefix(k))
    }
}
