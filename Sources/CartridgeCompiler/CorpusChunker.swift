import CartridgeModel

/// A window of the corpus' token stream.
public struct CorpusChunk: Codable, Sendable, Equatable {
    public var start: Int
    public var ids: [Int]
}

/// Cuts windows of seeded random length out of the corpus' tokens (self-study reads one window at
/// a time; several conversations share each window and its KV cache).
public enum CorpusChunker {
    /// `count` windows with lengths uniform in `minTokens...maxTokens` (capped by the corpus) and
    /// uniform start positions, reproducible from `seed`.
    public static func chunks(tokens: [Int], count: Int, minTokens: Int, maxTokens: Int, seed: UInt64) -> [CorpusChunk] {
        precondition(minTokens > 0 && maxTokens >= minTokens && !tokens.isEmpty)
        var rng = SplitMix64(seed: seed ^ 0x00C0_FFEE)
        return (0..<count).map { _ in
            let lo = min(minTokens, tokens.count), hi = min(maxTokens, tokens.count)
            let length = lo + Int(rng.next() % UInt64(hi - lo + 1))
            let start = Int(rng.next() % UInt64(tokens.count - length + 1))
            return CorpusChunk(start: start, ids: Array(tokens[start..<(start + length)]))
        }
    }
}
