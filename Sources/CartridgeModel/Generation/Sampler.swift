import CartridgeKernels
import Foundation

/// How the next token is chosen from logits.
public struct SamplingParameters: Sendable, Equatable {
    /// 0 means greedy (argmax).
    public var temperature: Float = 0
    /// Keep only the k most likely tokens (0: no limit).
    public var topK: Int = 0
    /// Keep the smallest set of tokens whose probability reaches topP (1: no limit).
    public var topP: Float = 1
    public var seed: UInt64 = 0

    public init(temperature: Float = 0, topK: Int = 0, topP: Float = 1, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.seed = seed
    }

    public static let greedy = SamplingParameters()
}

/// Chooses tokens from logits according to `SamplingParameters`.
public struct Sampler: Sendable {
    public let parameters: SamplingParameters
    public var rng: SplitMix64

    public init(_ parameters: SamplingParameters) {
        self.parameters = parameters
        rng = SplitMix64(seed: parameters.seed)
    }

    /// Picks a token from one row of `n` logits.
    public mutating func sample(_ logits: UnsafePointer<Float>, count n: Int) -> Int {
        let p = parameters
        if p.temperature <= 0 { return argmax(logits, n) }
        // Candidates: tokens within 30 temperature units of the best (the rest have relative
        // probability below e^-30 ~ 1e-13 and cannot be drawn in practice), sorted by logit, cut
        // by top-k. This avoids sorting the whole vocabulary for every token.
        var top = -Float.infinity
        for i in 0..<n where logits[i] > top { top = logits[i] }
        let floor = top - 30 * p.temperature
        var idx = (0..<n).filter { logits[$0] >= floor }
        idx.sort { logits[$0] > logits[$1] }
        if p.topK > 0 && idx.count > p.topK { idx = Array(idx.prefix(p.topK)) }
        let maxLogit = logits[idx[0]]
        var probs = idx.map { Double(expf((logits[$0] - maxLogit) / p.temperature)) }
        var total = probs.reduce(0, +)
        if p.topP < 1 {
            var cum = 0.0, keep = probs.count
            for (i, pr) in probs.enumerated() {
                cum += pr / total
                if cum >= Double(p.topP) { keep = i + 1; break }
            }
            probs = Array(probs.prefix(keep))
            total = probs.reduce(0, +)
        }
        var u = rng.nextUnit() * total
        for (i, pr) in probs.enumerated() {
            u -= pr
            if u < 0 { return idx[i] }
        }
        return idx[probs.count - 1]
    }

    private func argmax(_ a: UnsafePointer<Float>, _ n: Int) -> Int {
        var best = 0
        for i in 1..<n where a[i] > a[best] { best = i }
        return best
    }
}
