/// What a training sequence is supervised on, per token row.
public enum Supervision: Sendable, Equatable {
    /// Row t is trained to predict `targets[t]` with weight `weights[t]` (0: not supervised).
    case nextToken(targets: [Int], weights: [Float])
    /// Row t is trained towards the teacher distribution given by its top-k ids and
    /// log-probabilities, with weight `weights[t]` (0: not supervised).
    case distillation(ids: [[Int]], logProbs: [[Float]], weights: [Float])

    var weights: [Float] {
        switch self {
        case let .nextToken(_, w): return w
        case let .distillation(_, _, w): return w
        }
    }
}

/// One sequence of a training batch. Its tokens sit at positions p..<p+n after the prefix; it
/// attends to the prefix and causally to itself, never to other sequences of the batch (several
/// short sequences packed in one row behave exactly like separate rows).
public struct TrainingSequence: Sendable, Equatable {
    public var tokens: [Int]
    public var supervision: Supervision

    public init(tokens: [Int], supervision: Supervision) {
        self.tokens = tokens
        self.supervision = supervision
    }

    /// Next-token prediction over the whole sequence (each row predicts the following token).
    public static func nextToken(_ tokens: [Int]) -> TrainingSequence {
        var targets = Array(tokens.dropFirst())
        targets.append(0)
        var weights = [Float](repeating: 1, count: tokens.count)
        weights[tokens.count - 1] = 0
        return TrainingSequence(tokens: tokens, supervision: .nextToken(targets: targets, weights: weights))
    }
}
