import CartridgeFormat
import CartridgeKernels

/// A question as retrieval reads it: its embedding and its words.
public struct RetrievalQuery: Sendable, Equatable {
    /// The L2-normalized embedding of the question.
    public var vector: [Float]
    /// Ids of the question's distinct words (`PassageTerms`).
    public var words: [UInt32]

    public init(vector: [Float], words: [UInt32]) {
        self.vector = vector
        self.words = words
    }

    /// The query of a text whose embedding is `vector`.
    public init(vector: [Float], text: String) {
        self.init(vector: vector, words: PassageTerms(text: text).ids)
    }
}

/// A cartridge found for a query.
public struct RetrievalMatch: Sendable, Equatable {
    /// Index of the cartridge in the index.
    public var cartridge: Int
    /// The cartridge's score for the query (higher is better; see `ExactIndex`).
    public var score: Float
    /// The cartridge's passage whose vector is closest to the query's.
    public var passage: Int
}

/// Finds cartridges for a query from their passages' vectors and words.
/// `ExactIndex` scores every passage; an approximate index can replace it behind this protocol.
public protocol RetrievalIndex: Sendable {
    var dimension: Int { get }
    var cartridgeCount: Int { get }
    /// Adds one cartridge's passages: their vectors, (n, dimension) row-major, and their words
    /// (n entries, nil for a passage without stored words); returns the cartridge's index.
    mutating func add(vectors: [Float], words: [PassageTerms?]) -> Int
    /// The k best cartridges, best first (ties: lower index first).
    func search(_ query: RetrievalQuery, k: Int) -> [RetrievalMatch]
}

/// Exact search. A cartridge gets two scores: the best cosine similarity between the query
/// vector and its passage vectors (one BLAS matrix-vector product over all of them; vectors are
/// L2-normalized), and the best BM25 score of its passages for the query's words
/// (`LexicalIndex`, document frequencies over every passage of the index). Each kind is
/// standardized over the cartridges (minus its mean, divided by its standard deviation), and the
/// score is their mean: the two count equally whatever their scales. A cartridge whose passages
/// carry no words (written before words were stored) uses its standardized cosine for both; when
/// no cartridge carries words, the score is the cosine alone.
public struct ExactIndex: RetrievalIndex, @unchecked Sendable {
    public let dimension: Int
    /// (passages, dimension) all passage vectors
    private var vectors: [Float] = []
    /// all passages' words
    private var lexical = LexicalIndex()
    /// owning cartridge of each passage
    private var owner: [Int] = []
    /// first passage of each cartridge
    private var firstPassage: [Int] = []
    /// whether each cartridge's passages carry words
    private var hasWords: [Bool] = []
    public private(set) var cartridgeCount = 0

    public init(dimension: Int) { self.dimension = dimension }

    public mutating func add(vectors v: [Float], words: [PassageTerms?]) -> Int {
        invariant(v.count % dimension == 0 && words.count == v.count / dimension, "vectors must be (n, dimension) with n passages' words")
        let id = cartridgeCount
        firstPassage.append(owner.count)
        owner += Array(repeating: id, count: words.count)
        vectors += v
        lexical.add(words)
        hasWords.append(words.contains { $0 != nil })
        cartridgeCount += 1
        return id
    }

    public var passageCount: Int { owner.count }

    public func search(_ query: RetrievalQuery, k: Int) -> [RetrievalMatch] {
        invariant(query.vector.count == dimension)
        let n = owner.count
        guard n > 0, k > 0 else { return [] }
        var cosines = [Float](repeating: 0, count: n)
        vectors.withUnsafeBufferPointer { v in
            query.vector.withUnsafeBufferPointer { q in
                cosines.withUnsafeMutableBufferPointer { s in
                    BLAS.gemv(m: n, n: dimension, a: v.baseAddress!, lda: dimension, x: q.baseAddress!, y: s.baseAddress!)
                }
            }
        }
        var best = [RetrievalMatch](repeating: RetrievalMatch(cartridge: 0, score: -.infinity, passage: -1), count: cartridgeCount)
        for i in 0..<n where cosines[i] > best[owner[i]].score {
            best[owner[i]] = RetrievalMatch(cartridge: owner[i], score: cosines[i], passage: i - firstPassage[owner[i]])
        }
        for c in 0..<cartridgeCount { best[c].cartridge = c }
        if lexical.passagesWithWords > 0 {
            var bm25 = [Float](repeating: 0, count: cartridgeCount)
            for (i, s) in lexical.scores(query.words).enumerated() { bm25[owner[i]] = max(bm25[owner[i]], s) }
            let fused = Self.fuse(cosine: best.map(\.score), bm25: bm25, hasWords: hasWords)
            for c in 0..<cartridgeCount { best[c].score = fused[c] }
        }
        return Array(best.filter { $0.passage >= 0 }
            .sorted { $0.score != $1.score ? $0.score > $1.score : $0.cartridge < $1.cartridge }
            .prefix(k))
    }

    /// The mean of the standardized cosine and BM25 scores of each cartridge; a cartridge without
    /// words counts its standardized cosine twice. Cartridges without passages (cosine -inf) are
    /// left out of the statistics and stay at -inf.
    static func fuse(cosine: [Float], bm25: [Float], hasWords: [Bool]) -> [Float] {
        let present = cosine.indices.filter { cosine[$0] > -.infinity }
        let c = standardized(cosine, over: present), b = standardized(bm25, over: present.filter { hasWords[$0] })
        return cosine.indices.map { i in cosine[i] > -.infinity ? (c[i] + (hasWords[i] ? b[i] : c[i])) / 2 : -.infinity }
    }

    /// `values` with the entries at `indices` replaced by their z-scores among themselves (0 when
    /// they are all equal); the other entries are left as they are.
    static func standardized(_ values: [Float], over indices: [Int]) -> [Float] {
        guard !indices.isEmpty else { return values }
        let n = Float(indices.count)
        let mean = indices.reduce(0) { $0 + values[$1] } / n
        let sd = (indices.reduce(0) { $0 + (values[$1] - mean) * (values[$1] - mean) } / n).squareRoot()
        var out = values
        for i in indices { out[i] = sd > 0 ? (values[i] - mean) / sd : 0 }
        return out
    }
}
