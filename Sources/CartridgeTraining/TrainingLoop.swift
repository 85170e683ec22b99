import CartridgeKernels
import CartridgeModel

/// The optimization of a trainable prefix: batches, Adam steps, validation, checkpoints and
/// snapshots. `cartridge-compile` and `cartridge train-trace` both train through it; what a step
/// leaves behind (logs, checkpoint files, snapshot cartridges) is up to the caller's hooks.
///
/// Step s (0-based) reads `batch(step: s)`, which depends on the seed and s only, so a run
/// resumed at step s continues exactly as an uninterrupted one.
public final class TrainingLoop {
    public let trainer: PrefixTrainer
    public let prefix: TrainablePrefix
    public let adam: Adam
    /// The sequences the steps draw their batches from.
    public let train: [TrainingSequence]
    /// Held-out sequences: their mean loss is measured before the first step, every
    /// `validateEvery` steps and after the last (none: no validation).
    public let validation: [TrainingSequence]
    /// Sequences per step.
    public var batchSize = 1
    /// Seeds the order in which each epoch visits the training sequences.
    public var seed: UInt64 = 0
    /// The learning rate of each step, from Adam's configured rate as the peak.
    public var schedule = LearningRateSchedule.constant
    /// Steps between checkpoints (the last step is always one); nil: only the last step.
    public var checkpointEvery: Int?
    /// Steps between validation losses besides the first and the last; nil: only those.
    public var validateEvery: Int?
    /// Steps between snapshots (step 0 included on a fresh run); nil: none.
    public var snapshotEvery: Int?
    /// The teacher's hidden states for a step's batch (deep context distillation), given the
    /// indices in `train` of the batch's sequences; nil (or returning nil): the loss is the
    /// batch's supervision alone. Validation never uses them, so its loss compares across runs.
    public var hiddenTargets: ((_ indices: [Int]) throws -> HiddenStateTargets?)?

    /// The last step's loss, its parts and its batch's size (read it in `onStep`).
    public private(set) var lastEvaluation: PrefixTrainer.Evaluation?
    /// After each step: the number of steps done, the step's loss and the gradient it applied.
    public var onStep: ((_ step: Int, _ loss: Double, _ gradKeys: FloatBuffer, _ gradValues: FloatBuffer) throws -> Void)?
    /// After each validation: the number of steps done and the validation loss.
    public var onValidation: ((_ step: Int, _ loss: Double) throws -> Void)?
    /// When a checkpoint is due: the number of steps done (the prefix and Adam hold that state).
    public var onCheckpoint: ((_ step: Int) throws -> Void)?
    /// When a snapshot is due: the number of steps done.
    public var onSnapshot: ((_ step: Int) throws -> Void)?

    /// What a run measured.
    public struct Result: Sendable {
        /// The training loss of every step this run made.
        public var losses: [Double]
        /// Validation loss before the first step (nil when the run resumed or has no validation).
        public var validationInitial: Double?
        /// Validation loss after the last step (nil without validation).
        public var validationFinal: Double?
    }

    public init(trainer: PrefixTrainer, prefix: TrainablePrefix, adam: Adam,
                train: [TrainingSequence], validation: [TrainingSequence] = []) {
        self.trainer = trainer
        self.prefix = prefix
        self.adam = adam
        self.train = train
        self.validation = validation
    }

    /// Runs steps `firstStep..<steps` (none when there is no training data). A fresh run
    /// (`firstStep == 0`) measures the validation loss and takes a snapshot before its first step.
    public func run(from firstStep: Int = 0, steps: Int) throws -> Result {
        invariant(firstStep >= 0 && firstStep <= steps)
        let gradKeys = FloatBuffer(count: prefix.keys.count), gradValues = FloatBuffer(count: prefix.values.count)
        var result = Result(losses: [])
        if firstStep == 0 {
            result.validationInitial = validationLoss()
            if let v = result.validationInitial { try onValidation?(0, v) }
            if snapshotEvery.map({ $0 > 0 }) == true { try onSnapshot?(0) }
        }
        if !train.isEmpty {
            for step in firstStep..<steps {
                let indices = Self.batchIndices(step: step, count: train.count, size: batchSize, seed: seed)
                let targets = try hiddenTargets?(indices)
                let e = trainer.lossAndGradient(prefix: prefix, batch: indices.map { train[$0] }, targets: targets,
                                                gradKeys: gradKeys, gradValues: gradValues)
                adam.update(prefix: prefix, gradKeys: gradKeys, gradValues: gradValues,
                            learningRate: schedule.rate(peak: adam.config.learningRate, step: step, steps: steps))
                result.losses.append(e.loss)
                lastEvaluation = e
                let done = step + 1
                try onStep?(done, e.loss, gradKeys, gradValues)
                if done == steps || checkpointEvery.map({ done % $0 == 0 }) == true { try onCheckpoint?(done) }
                if done < steps, validateEvery.map({ done % $0 == 0 }) == true, let v = validationLoss() {
                    try onValidation?(done, v)
                }
                if snapshotEvery.map({ $0 > 0 && done % $0 == 0 }) == true { try onSnapshot?(done) }
            }
        }
        result.validationFinal = validationLoss()
        if let v = result.validationFinal { try onValidation?(steps, v) }
        return result
    }

    /// The sequences of one step: a fixed permutation per epoch (from the seed), cut in batches.
    public func batch(step: Int) -> [TrainingSequence] {
        Self.batch(step: step, of: train, size: batchSize, seed: seed)
    }

    /// The sequences of step `step` out of `data`, `size` at a time.
    public static func batch(step: Int, of data: [TrainingSequence], size: Int, seed: UInt64) -> [TrainingSequence] {
        batchIndices(step: step, count: data.count, size: size, seed: seed).map { data[$0] }
    }

    /// The indices (into `count` sequences) of step `step`'s batch, `size` at a time.
    public static func batchIndices(step: Int, count: Int, size: Int, seed: UInt64) -> [Int] {
        let perEpoch = max(1, count / size)
        let epoch = step / perEpoch, position = step % perEpoch
        var order = Array(0..<count)
        var rng = SplitMix64(seed: seed &+ 0x5EED &+ UInt64(epoch) &* 0x9E37_79B9)
        order.shuffle(using: &rng)
        return (0..<min(size, count)).map { order[(position * size + $0) % count] }
    }

    /// Mean loss over the validation sequences (batches of 8, no gradient), or nil when there are none.
    public func validationLoss() -> Double? {
        guard !validation.isEmpty else { return nil }
        var total = 0.0, weight = 0.0
        var i = 0
        while i < validation.count {
            let e = trainer.loss(prefix: prefix, batch: Array(validation[i..<min(validation.count, i + 8)]))
            total += e.loss * e.weight
            weight += e.weight
            i += 8
        }
        return weight > 0 ? total / weight : nil
    }
}
