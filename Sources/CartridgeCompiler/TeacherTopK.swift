import CartridgeKernels
import Foundation

/// The teacher's distribution at one position, kept sparse: the most likely ids and their
/// log-probabilities (full-vocabulary log-softmax), at most `k`, stopping once the kept
/// probability reaches `mass`.
public struct TeacherTopK: Codable, Sendable, Equatable {
    public var ids: [Int]
    public var logProbs: [Float]

    public init(ids: [Int], logProbs: [Float]) {
        self.ids = ids
        self.logProbs = logProbs
    }

    /// From one row of logits.
    public init(logits: UnsafePointer<Float>, count n: Int, k: Int = 20, mass: Float = 0.99) {
        let lse = Softmax.logSumExp(logits, n)
        // partial selection of the k largest logits
        var best: [(Int, Float)] = []
        best.reserveCapacity(k + 1)
        var floor = -Float.infinity
        for i in 0..<n where logits[i] > floor || best.count < k {
            best.append((i, logits[i]))
            if best.count > k {
                best.sort { $0.1 > $1.1 }
                best.removeLast()
                floor = best[k - 1].1
            }
        }
        best.sort { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
        var ids: [Int] = [], lps: [Float] = []
        var kept: Float = 0
        for (id, z) in best {
            let lp = z - lse
            ids.append(id)
            lps.append(lp)
            kept += exp(lp)
            if kept >= mass { break }
        }
        self.ids = ids
        logProbs = lps
    }
}
