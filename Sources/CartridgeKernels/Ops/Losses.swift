/// Token-level losses on rows of logits, each computed together with its gradient (the logits
/// rows are overwritten by d loss / d logits, already multiplied by the row's weight).
public enum Losses {
    /// Cross-entropy against one target per row: loss_r = lse(z_r) - z_r[target].
    /// dz_r = weight * (softmax(z_r) - onehot(target)). Returns sum_r weight_r * loss_r.
    public static func crossEntropy(logits: UnsafeMutablePointer<Float>, vocab: Int, targets: [Int], weights: [Float]) -> Double {
        let losses = UnsafeMutablePointer<Double>.allocate(capacity: targets.count)
        defer { losses.deallocate() }
        parallelRows(targets.count, minimum: 2) { rows in
            for r in rows {
                let z = logits + r * vocab, w = weights[r]
                losses[r] = 0
                if w == 0 { z.update(repeating: 0, count: vocab); continue }
                let lse = Softmax.logSumExp(z, vocab)
                losses[r] = Double(w) * Double(lse - z[targets[r]])
                _ = FastMath.expShiftedSum(z, vocab, shift: lse)
                Vector.scale(z, by: w, vocab)
                z[targets[r]] -= w
            }
        }
        return (0..<targets.count).reduce(0.0) { $0 + losses[$1] }
    }

    /// Distillation against a sparse teacher: loss_r = -sum_j p_j log_softmax(z_r)[id_j], with
    /// p_j = exp(teacher log-probability). dz_r = weight * ((sum_j p_j) softmax(z_r) - p) (p scattered
    /// at the teacher ids). Returns sum_r weight_r * loss_r.
    public static func distillation(logits: UnsafeMutablePointer<Float>, vocab: Int,
                                    teacherIDs: [[Int]], teacherLogProbs: [[Float]], weights: [Float]) -> Double {
        let losses = UnsafeMutablePointer<Double>.allocate(capacity: teacherIDs.count)
        defer { losses.deallocate() }
        parallelRows(teacherIDs.count, minimum: 2) { rows in
            for r in rows {
                let z = logits + r * vocab, w = weights[r]
                losses[r] = 0
                if w == 0 || teacherIDs[r].isEmpty { z.update(repeating: 0, count: vocab); continue }
                let lse = Softmax.logSumExp(z, vocab)
                var mass: Float = 0, loss: Float = 0
                for (id, lp) in zip(teacherIDs[r], teacherLogProbs[r]) {
                    let pj = FastMath.exp(lp)
                    mass += pj
                    loss -= pj * (z[id] - lse)
                }
                losses[r] = Double(w) * Double(loss)
                _ = FastMath.expShiftedSum(z, vocab, shift: lse)
                Vector.scale(z, by: w * mass, vocab)
                for (id, lp) in zip(teacherIDs[r], teacherLogProbs[r]) { z[id] -= w * FastMath.exp(lp) }
            }
        }
        return (0..<teacherIDs.count).reduce(0.0) { $0 + losses[$1] }
    }
}
