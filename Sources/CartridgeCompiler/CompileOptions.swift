import CartridgeCorpus
import CartridgeFormat
import CartridgeTraining

/// What to optimize.
public enum CompileObjective: String, Codable, Sendable, CaseIterable {
    /// Context distillation on self-study conversations (the method).
    case distill
    /// Next-token prediction on the raw corpus (the baseline: memorizes, generalizes worse).
    case nextToken = "next-token"
}

/// What agent B and the teacher read while they answer a conversation about a window.
public enum TeacherContext: String, Codable, Sendable, CaseIterable {
    /// The window agent A read (256-768 tokens at the defaults).
    case window
    /// The whole corpus when it fits the model's context with a conversation, otherwise the
    /// longest span around the window that does: what the evaluation's in-context condition
    /// reads, and so what the cartridge must imitate.
    case corpus
}

/// How a batch's loss weighs its conversations.
public enum LossWeighting: String, Codable, Sendable, CaseIterable {
    /// Every supervised token weighs the same: long answers weigh more.
    case token
    /// Every conversation weighs the same: a short factual answer weighs as much as a long summary.
    case conversation
}

/// Every setting of a compile. Defaults compile a corpus of about 10k tokens in well under 30
/// minutes on 2 cores. The options that change the result are hashed into the work directory, so
/// a resumed compile never mixes settings.
public struct CompileOptions: Codable, Sendable, Equatable {
    /// KV slots p of the cartridge.
    public var size = 128
    /// Which corpus tokens' KV the cartridge starts from (and the anchor holds it near).
    public var initialization = InitSelection.first
    /// Self-study conversations to synthesize.
    public var samples = 512
    /// Conversations per corpus window (they share its KV cache).
    public var conversationsPerWindow = 16
    /// Windows whose conversations decode together in one batch (larger batches use the matrix
    /// units better; the batch is also the unit of resumption).
    public var windowsPerBatch = 4
    /// Corpus window lengths in tokens.
    public var windowMinTokens = 256
    public var windowMaxTokens = 768
    /// Longest question (agent A) and answer (agent B), in tokens.
    public var maxQuestionTokens = 64
    public var maxAnswerTokens = 160
    /// Kinds of conversation, taken in turn: each of the five kinds of self-study followed by a
    /// `recite` and an `entity` conversation, so a third of them teach a sentence of the corpus
    /// word for word and a third ask about one of its names or numbers. On the dev essays at
    /// p = 128 this closed 51.5% of the gap against 48.2% for the five kinds alternating with
    /// recall, with the same budget and seed (docs/quality.md).
    public var seedKinds = SeedKind.selfStudy.flatMap { [$0, .recite, .entity] }
    /// What agent B and the teacher read (agent A always reads its window): the whole corpus, as
    /// the evaluation's in-context condition does (docs/quality.md, issue 16).
    public var teacherContext = TeacherContext.corpus
    /// Weight of the teacher's distribution over the user turn's tokens, relative to an answer
    /// token's: for turns agent A wrote (`writtenTurnWeight`) and for turns cut from the corpus or
    /// made from its names (`recall`, `recite`, `entity`: `corpusTurnWeight`). 0: the user turn is
    /// context only, as in the answers-only objective. Both at 1 (the paper's objective sums the
    /// KL over both messages) closed 56.9% and 58.7% of the gap on the 70 spread dev questions
    /// against 47.7% and 49.0% at 0 (docs/quality.md, issue 16, fifth step).
    public var writtenTurnWeight: Float = 1
    public var corpusTurnWeight: Float = 1
    /// Sampling temperature of agent A.
    public var questionTemperature: Float = 0.6
    /// Teacher distribution: at most this many ids per position, cut once this mass is reached.
    public var teacherTopK = 20
    public var teacherMass: Float = 0.99
    /// Optimizer steps and sequences per step.
    public var steps = 160
    public var batchSize = 8
    /// Adam's learning rate, the paper's. With the whole-corpus teacher and no anchor it closes
    /// more of the gap over whole essays than 0.005 with anchor 10 (docs/quality.md, issue 16).
    public var learningRate: Float = 0.02
    /// How the rate moves over the steps.
    public var learningRateSchedule = LearningRateSchedule.constant
    /// Pull toward the initialization (decoupled, like weight decay toward the init instead of
    /// toward zero): each step also moves the prefix by -lr * anchor * (prefix - init), which
    /// bounds a value's drift at about 1 / anchor. 0 (the default) trains freely: with a teacher
    /// that reads only a window, 10 kept the initialized text's facts that free training lost;
    /// with the whole-corpus teacher the free prefix reaches the rest of the corpus better, though
    /// on some corpora it loses part of what the init held (docs/quality.md).
    public var anchor: Float = 0
    /// The keys' own anchor, when it should differ from the values' (issue 16, lever 5: keys
    /// route attention, values carry content, so the keys can be held near the initialization
    /// while the values move). nil: `anchor` for both.
    public var keyAnchor: Float?
    /// How the distillation loss weighs the answers of a batch.
    public var lossWeighting = LossWeighting.token
    /// Deep context distillation: weight of the hidden-state term (each layer's output against
    /// the teacher's at the same token, `HiddenStateTargets`) relative to the KL. 0: off. The
    /// teacher's states are computed at each step (one forward of the batch after its teacher
    /// context), which doubles a step's time (aord: 736 s of training against 364 s).
    public var hiddenStateWeight: Float = 0
    /// Fraction of the conversations held out for validation loss.
    public var validationFraction = 0.1
    public var objective = CompileObjective.distill
    /// Sequence length of next-token training windows.
    public var nextTokenWindow = 256
    public var seed: UInt64 = 0
    public var dtype = TensorDType.f16
    /// Steps between checkpoints.
    public var checkpointEvery = 10

    public init() {}

    /// The stored names (work directories' job files, cartridges' recipes) keep the names these
    /// settings had before windows and passages were told apart, so existing work directories resume.
    enum CodingKeys: String, CodingKey {
        case size, initialization, samples
        case conversationsPerWindow = "conversationsPerChunk", windowsPerBatch = "chunksPerBatch"
        case windowMinTokens = "chunkMinTokens", windowMaxTokens = "chunkMaxTokens"
        case maxQuestionTokens, maxAnswerTokens, seedKinds, teacherContext, writtenTurnWeight, corpusTurnWeight, questionTemperature, teacherTopK, teacherMass, steps, batchSize
        case learningRate, learningRateSchedule, anchor, keyAnchor, lossWeighting, hiddenStateWeight, validationFraction, objective, nextTokenWindow, seed, dtype
        case checkpointEvery
    }

    /// Settings added after work directories existed are written only when they differ from
    /// their default, so a work directory made before them still resumes.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(size, forKey: .size)
        try c.encode(initialization, forKey: .initialization)
        try c.encode(samples, forKey: .samples)
        try c.encode(conversationsPerWindow, forKey: .conversationsPerWindow)
        try c.encode(windowsPerBatch, forKey: .windowsPerBatch)
        try c.encode(windowMinTokens, forKey: .windowMinTokens)
        try c.encode(windowMaxTokens, forKey: .windowMaxTokens)
        try c.encode(maxQuestionTokens, forKey: .maxQuestionTokens)
        try c.encode(maxAnswerTokens, forKey: .maxAnswerTokens)
        try c.encode(seedKinds, forKey: .seedKinds)
        try c.encode(teacherContext, forKey: .teacherContext)
        try c.encode(writtenTurnWeight, forKey: .writtenTurnWeight)
        try c.encode(corpusTurnWeight, forKey: .corpusTurnWeight)
        try c.encode(questionTemperature, forKey: .questionTemperature)
        try c.encode(teacherTopK, forKey: .teacherTopK)
        try c.encode(teacherMass, forKey: .teacherMass)
        try c.encode(steps, forKey: .steps)
        try c.encode(batchSize, forKey: .batchSize)
        try c.encode(learningRate, forKey: .learningRate)
        try c.encode(learningRateSchedule, forKey: .learningRateSchedule)
        try c.encode(anchor, forKey: .anchor)
        try c.encodeIfPresent(keyAnchor, forKey: .keyAnchor)
        try c.encode(lossWeighting, forKey: .lossWeighting)
        if hiddenStateWeight != 0 { try c.encode(hiddenStateWeight, forKey: .hiddenStateWeight) }
        try c.encode(validationFraction, forKey: .validationFraction)
        try c.encode(objective, forKey: .objective)
        try c.encode(nextTokenWindow, forKey: .nextTokenWindow)
        try c.encode(seed, forKey: .seed)
        try c.encode(dtype, forKey: .dtype)
        try c.encode(checkpointEvery, forKey: .checkpointEvery)
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        var o = CompileOptions()
        func read<T: Decodable>(_ key: CodingKeys, into value: inout T) throws {
            if let v = try c.decodeIfPresent(T.self, forKey: key) { value = v }
        }
        try read(.size, into: &o.size)
        try read(.initialization, into: &o.initialization)
        try read(.samples, into: &o.samples)
        try read(.conversationsPerWindow, into: &o.conversationsPerWindow)
        try read(.windowsPerBatch, into: &o.windowsPerBatch)
        try read(.windowMinTokens, into: &o.windowMinTokens)
        try read(.windowMaxTokens, into: &o.windowMaxTokens)
        try read(.maxQuestionTokens, into: &o.maxQuestionTokens)
        try read(.maxAnswerTokens, into: &o.maxAnswerTokens)
        try read(.seedKinds, into: &o.seedKinds)
        try read(.teacherContext, into: &o.teacherContext)
        try read(.writtenTurnWeight, into: &o.writtenTurnWeight)
        try read(.corpusTurnWeight, into: &o.corpusTurnWeight)
        try read(.questionTemperature, into: &o.questionTemperature)
        try read(.teacherTopK, into: &o.teacherTopK)
        try read(.teacherMass, into: &o.teacherMass)
        try read(.steps, into: &o.steps)
        try read(.batchSize, into: &o.batchSize)
        try read(.learningRate, into: &o.learningRate)
        try read(.learningRateSchedule, into: &o.learningRateSchedule)
        try read(.anchor, into: &o.anchor)
        o.keyAnchor = try c.decodeIfPresent(Float.self, forKey: .keyAnchor)
        try read(.lossWeighting, into: &o.lossWeighting)
        try read(.hiddenStateWeight, into: &o.hiddenStateWeight)
        try read(.validationFraction, into: &o.validationFraction)
        try read(.objective, into: &o.objective)
        try read(.nextTokenWindow, into: &o.nextTokenWindow)
        try read(.seed, into: &o.seed)
        try read(.dtype, into: &o.dtype)
        try read(.checkpointEvery, into: &o.checkpointEvery)
        self = o
    }

    /// The most optimizer steps a compile accepts (the defaults take 160).
    public static let maxSteps = 10_000_000

    /// Fast settings for the demo (a few minutes on 2 cores).
    public static var quick: CompileOptions {
        var o = CompileOptions()
        o.samples = 64
        o.conversationsPerWindow = 16
        o.windowMinTokens = 192
        o.windowMaxTokens = 384
        o.maxAnswerTokens = 96
        o.steps = 24
        o.batchSize = 4
        return o
    }

    /// Problems with the settings, each naming the option (its property name) and what it needs.
    /// Every compile checks these first: a value outside them would reach the engine unchecked.
    public func validate() -> [CompileOptionProblem] {
        var problems: [CompileOptionProblem] = []
        func need(_ ok: Bool, _ option: String, _ requirement: String) {
            if !ok { problems.append(CompileOptionProblem(option: option, requirement: requirement)) }
        }
        need(size >= 2, "size", "at least 2 (slot 0 is the attention sink)")
        need(samples >= 2 && samples <= 10_000_000, "samples", "in 2...10000000")
        need(conversationsPerWindow >= 1 && conversationsPerWindow <= 1024, "conversationsPerWindow", "in 1...1024")
        need(windowsPerBatch >= 1 && windowsPerBatch <= 1024, "windowsPerBatch", "in 1...1024")
        need(windowMinTokens >= 16, "windowMinTokens", "at least 16")
        need(windowMaxTokens >= windowMinTokens, "windowMaxTokens", "at least the shortest window (\(windowMinTokens))")
        need(maxQuestionTokens >= 8, "maxQuestionTokens", "at least 8")
        need(maxAnswerTokens >= 8, "maxAnswerTokens", "at least 8")
        need(!seedKinds.isEmpty, "seedKinds", "at least one kind")
        need(writtenTurnWeight >= 0 && writtenTurnWeight <= 100, "writtenTurnWeight", "in 0...100")
        need(corpusTurnWeight >= 0 && corpusTurnWeight <= 100, "corpusTurnWeight", "in 0...100")
        need(questionTemperature >= 0 && questionTemperature.isFinite, "questionTemperature", "a finite number >= 0")
        need(teacherTopK >= 1 && teacherTopK <= 1024, "teacherTopK", "in 1...1024")
        need(teacherMass > 0 && teacherMass <= 1, "teacherMass", "in (0, 1]")
        need(steps >= 0 && steps <= Self.maxSteps, "steps", "in 0...\(Self.maxSteps)")
        need(batchSize >= 1 && batchSize <= 4096, "batchSize", "in 1...4096")
        need(learningRate > 0 && learningRate.isFinite, "learningRate", "a positive number")
        need(hiddenStateWeight >= 0 && hiddenStateWeight <= 100, "hiddenStateWeight", "in 0...100")
        for (name, value) in [("anchor", anchor), ("keyAnchor", keyAnchor ?? 0)] {
            need(!(learningRate > 0 && learningRate.isFinite) || (value >= 0 && learningRate * value < 1), name, "at least 0 and below 1 / learning rate (\(1 / learningRate))")
        }
        need(validationFraction >= 0 && validationFraction < 0.9, "validationFraction", "in [0, 0.9)")
        need(nextTokenWindow >= 2, "nextTokenWindow", "at least 2")
        need(checkpointEvery >= 1, "checkpointEvery", "at least 1")
        return problems
    }
}

/// One setting outside what a compile accepts: the option (a `CompileOptions` property name) and
/// what it needs. Front ends map the option to their own name for it (a command-line flag).
public struct CompileOptionProblem: Error, Equatable, Sendable, CustomStringConvertible {
    public let option: String
    public let requirement: String

    public var description: String { "\(option) must be \(requirement)" }
}
