/// Token-level losses on rows of logits, each computed together with its gradient (the logits
/// rows are overwritten by d loss / d logits, already multiplied by the row's weight).
public enum Losses {
    /// Cross-entropy against one target per row: loss_r = lse(z_r) - z_r[target].
    /// dz_r = weight * (softmax(z_r) - onehot(target)). Returns sum_r weight_r * loss_r.
    public static func crossEntropy(logits: UnsafeMutablePointer<Float>, vocab: Int, targets: [Int], weights: [Float]) -> Double {
        var total = 0.0
        for r in targets.indices {
            let z = logits + r * vocab, w = weights[r]
            if w == 0 { z.update(repeating: 0, count: vocab); continue }
            let lse = Softmax.logSumExp(z, vocab)
            total += Double(w) * Double(lse - z[targets[r]])
            for j in 0..<vocab { z[j] = w * FastMath.exp(z[j] - lse) }
            z[targets[r]] -= w
        }
        return total
    }

    /// Distillation against a sparse teacher: loss_r = -sum_j p_j log_softmax(z_r)[id_j], with
    /// p_j = exp(teacher log-probability). dz_r = weight * ((sum_j p_j) softmax(z_r) - p) (p scattered
    /// at the teacher ids). Returns sum_r weight_r * loss_r.
    public static func distillation(logits: UnsafeMutablePointer<Float>, vocab: Int,
                                    teacherIDs: [[Int]], teacherLogProbs: [[Float]], weights: [Float]) -> Double {
        var total = 0.0
        for r in teacherIDs.indices {
            let z = logits + r * vocab, w = weights[r]
            if w == 0 || teacherIDs[r].isEmpty { z.update(repeating: 0, count: vocab); continue }
            let lse = Softmax.logSumExp(z, vocab)
            var mass: Float = 0, loss: Float = 0
            for (id, lp) in zip(teacherIDs[r], teacherLogProbs[r]) {
                let pj = FastMath.exp(lp)
                mass += pj
                loss -= pj * (z[id] - lse)
            }
            total += Double(w) * Double(loss)
            for j in 0..<vocab { z[j] = w * mass * FastMath.exp(z[j] - lse) }
            for (id, lp) in zip(teacherIDs[r], teacherLogProbs[r]) { z[id] -= w * FastMath.exp(lp) }
        }
        return total
    }
}
