import CartridgeKernels

/// A window of the corpus' token stream.
public struct CorpusWindow: Codable, Sendable, Equatable {
    public var start: Int
    public var ids: [Int]
}

/// Cuts windows of seeded random length out of the corpus' tokens (self-study reads one window at
/// a time; several conversations share each window and its KV cache).
public enum WindowSampler {
    /// `count` windows with lengths uniform in `minTokens...maxTokens` (capped by the corpus),
    /// reproducible from `seed`.
    ///
    /// A window of length L starts at a position drawn uniformly from `-(L-1)...N-1` and is then
    /// moved inside the corpus. Drawing the start uniformly from the valid `0...N-L` instead would
    /// almost never cover the corpus' first and last tokens when L is a large part of N: for a
    /// 1,000-token essay and L in 256...768, token 50 would be in 12% of the windows and the middle
    /// in 82%, so self-study would hardly ever ask about the text the cartridge is initialized from.
    /// With the shifted draw they are in 37% and 65%.
    public static func windows(tokens: [Int], count: Int, minTokens: Int, maxTokens: Int, seed: UInt64) -> [CorpusWindow] {
        invariant(minTokens > 0 && maxTokens >= minTokens && !tokens.isEmpty)
        var rng = SplitMix64(seed: seed ^ 0x00C0_FFEE)
        let n = tokens.count
        return (0..<count).map { _ in
            let lo = min(minTokens, n), hi = min(maxTokens, n)
            let length = lo + Int(rng.next() % UInt64(hi - lo + 1))
            let drawn = Int(rng.next() % UInt64(n + length - 1)) - (length - 1)
            let start = min(max(drawn, 0), n - length)
            return CorpusWindow(start: start, ids: Array(tokens[start..<(start + length)]))
        }
    }
}
