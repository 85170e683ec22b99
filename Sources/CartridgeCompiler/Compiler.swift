import CartridgeCorpus
import CartridgeEmbedding
import CartridgeFormat
import CartridgeKernels
import CartridgeModel
import CartridgeTraining
import Foundation
import Logging

/// What a compile measured.
public struct CompileSummary: Sendable {
    public var documents: Int
    public var corpusTokens: Int
    public var samples: Int
    public var trainingTokens: Int
    public var steps: Int
    public var synthesisSeconds: Double
    public var trainingSeconds: Double
    public var totalSeconds: Double
    /// Training loss at every step.
    public var losses: [Double]
    public var validationLossInitial: Double?
    public var validationLossFinal: Double?
    public var outputBytes: Int
}

/// Turns documents into a trained cartridge: self-study synthesis, then context distillation
/// into a KV prefix (or, as a control, next-token training on the raw corpus). Everything
/// finished is kept in the work directory; running the same compile again resumes there and
/// gives the same result as an uninterrupted run.
public final class Compiler: @unchecked Sendable {
    /// The frozen model the cartridge is trained for.
    public let model: LanguageModel
    /// The model's identity, recorded in the cartridge.
    public let identity: ModelIdentity
    /// The retrieval embedder's files (`MiniLMEmbedder`).
    public let embedderDirectory: URL
    public let options: CompileOptions
    /// When set, a complete cartridge is also written every this many steps to
    /// `WORK/snapshots/step-NNNNN.cart` (for curves of quality against compile time). Snapshots
    /// do not change the result, so they are not part of the job's settings.
    public var snapshotEvery: Int?
    /// Steps between validation losses in `log.jsonl` (besides the first and the last). Each one
    /// is a forward pass over every held-out conversation, so the default keeps them few; they
    /// do not change the result.
    public var validateEvery = 40
    let logger: Logger

    public init(model: LanguageModel, options: CompileOptions, embedderDirectory: URL = MiniLMEmbedder.defaultDirectory,
                logger: Logger = Logger(label: "cartridges.compile")) throws {
        self.model = model
        self.identity = ModelIdentity(name: model.config.name, fingerprint: try ModelFingerprint.fingerprint(of: model))
        self.embedderDirectory = embedderDirectory
        self.options = options
        self.logger = logger
    }

    /// Version of the self-study data a work directory holds (windows, prompts); a work directory
    /// of another version is refused instead of mixing two kinds of data. 2: windows cover the
    /// corpus' first and last tokens (WindowSampler). 3: a window's conversations quote all its
    /// sentences before repeating one, and fact questions start with a name or number of their
    /// excerpt. 4: sentences join wrapped lines ("e.g. when" and "ideas.The" split right). 5: agent B
    /// reads its own teacher context (`TeacherContext`) and may record the user turn's rows.
    static let synthesisVersion = 5

    /// The default work directory for an output file: `NAME.cart` → `NAME.cart.work/`.
    public static func defaultWorkDirectory(for output: URL) -> URL {
        output.deletingLastPathComponent().appendingPathComponent(output.lastPathComponent + ".work")
    }

    public func compile(documents: [Document], output: URL, workDirectory: URL? = nil) throws -> CompileSummary {
        let start = Date()
        let lm = model, tok = lm.tokenizer
        // settings out of range and sizes that cannot fit the model's context fail here, before any work
        if let problem = options.validate().first { throw problem }
        try lm.model.checkContext(options.size, what: "the cartridge size")
        try lm.model.checkContext(options.size + options.maxQuestionTokens + options.maxAnswerTokens,
                                  what: "a cartridge of \(options.size) slots with a question of \(options.maxQuestionTokens) and an answer of \(options.maxAnswerTokens) tokens")
        try lm.model.checkContext(options.windowMaxTokens + options.maxQuestionTokens + options.maxAnswerTokens,
                                  what: "a self-study window of \(options.windowMaxTokens) tokens with a question of \(options.maxQuestionTokens) and an answer of \(options.maxAnswerTokens) tokens")
        let name = output.deletingPathExtension().lastPathComponent
        let work = try WorkDirectory(url: workDirectory ?? Self.defaultWorkDirectory(for: output), job: try job(documents: documents))

        var corpus: [Int] = []
        for (i, d) in documents.enumerated() { corpus += tok.encode((i == 0 ? "" : "\n\n") + d.text, parseSpecial: false) }
        let initial = CartridgeBuilder.initialTensors(documents: documents, model: lm, size: options.size, selection: options.initialization)
        if initial.length < options.size {
            logger.warning("the corpus has only \(initial.length) tokens with its header; the cartridge gets \(initial.length) slots")
        }

        // ---- data ----
        let synthStart = Date()
        let (train, trainSpans, validation, sampleCount) = try trainingData(corpus: corpus, work: work)
        let synthesisSeconds = Date().timeIntervalSince(synthStart)
        let trainingTokens = train.reduce(0) { $0 + $1.tokens.count }
        if let longest = (train + validation).map(\.tokens.count).max() {
            try lm.model.checkContext(initial.length + longest,
                                      what: "a cartridge of \(initial.length) slots and a training sequence of \(longest) tokens")
        }
        logger.info("data: \(train.count) training and \(validation.count) validation sequences, \(trainingTokens) training tokens")

        // ---- training ----
        let trainStart = Date()
        let embedder = try MiniLMEmbedder(directory: embedderDirectory)
        let (passages, vectors) = CartridgeBuilder.retrievalVectors(documents: documents, embedder: embedder)
        let prefix = TrainablePrefix(model: lm.model, keys: initial.keys, values: initial.values, length: initial.length, frozen: 1)
        let adam = Adam(config: AdamConfig(learningRate: options.learningRate, anchor: options.anchor, keyAnchor: options.keyAnchor), prefix: prefix)
        let firstStep = try work.loadCheckpoint(prefix: prefix, adam: adam) ?? 0
        guard firstStep <= options.steps else { throw WorkDirectoryError.trainedPast(path: work.url.path, step: firstStep, steps: options.steps) }
        if firstStep > 0 { logger.info("resuming training at step \(firstStep) of \(options.steps)") }
        let recipeData = try JSONEncoder().encode(options)
        let recipe = (try? JSONDecoder().decode([String: JSONValue].self, from: recipeData)) ?? [:]
        func writeCartridge(to url: URL, results: [String: JSONValue]) throws {
            let meta = CartridgeBuilder.metadata(name: name, model: lm, identity: self.identity, length: prefix.length, frozen: prefix.frozen, dtype: options.dtype,
                                                 documents: documents, chunks: passages, embeddingDimension: embedder.dimension,
                                                 recipe: recipe.merging(["method": .string("self-study " + options.objective.rawValue)]) { a, _ in a },
                                                 results: results)
            try CartFile.write(Cartridge(metadata: meta, keys: prefix.keys.array, values: prefix.values.array, retrievalVectors: vectors), to: url)
        }
        let loop = TrainingLoop(trainer: PrefixTrainer(model: lm.model), prefix: prefix, adam: adam, train: train, validation: validation)
        loop.batchSize = options.batchSize
        loop.seed = options.seed
        loop.schedule = options.learningRateSchedule
        loop.checkpointEvery = options.checkpointEvery
        loop.validateEvery = validateEvery
        loop.snapshotEvery = snapshotEvery
        if options.hiddenStateWeight > 0 && options.objective == .distill {
            let teacher = TeacherHiddenStates(model: lm, corpus: corpus, weight: options.hiddenStateWeight)
            loop.hiddenTargets = { indices in try teacher.targets(sequences: indices.map { train[$0] }, spans: indices.map { trainSpans[$0] }) }
        }
        let progress = Progress("training", total: options.steps, unit: "steps", startingAt: firstStep)
        var stepSeconds = 0.0  // a validation between steps is logged with its step's time
        loop.onStep = { [unowned loop] step, loss, _, _ in
            stepSeconds = Date().timeIntervalSince(trainStart)
            var entry: [String: Any] = ["step": step, "loss": loss, "seconds": stepSeconds]
            if let hidden = loop.lastEvaluation?.hiddenLoss, loop.hiddenTargets != nil { entry["hidden_loss"] = hidden }
            work.log(entry)
            progress.update(step, note: String(format: "loss %.4f", loss))
        }
        loop.onValidation = { step, loss in
            let seconds = step == self.options.steps ? Date().timeIntervalSince(trainStart) : stepSeconds
            work.log(["step": step, "validation_loss": loss, "seconds": seconds])
        }
        loop.onCheckpoint = { step in try work.saveCheckpoint(prefix: prefix, adam: adam, step: step) }
        loop.onSnapshot = { step in
            let dir = work.url.appendingPathComponent("snapshots")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try writeCartridge(to: dir.appendingPathComponent(String(format: "step-%05d.cart", step)),
                               results: ["steps": .number(Double(step)), "synthesis_seconds": .number(synthesisSeconds),
                                         "training_seconds": .number(Date().timeIntervalSince(trainStart))])
        }
        let trained = try loop.run(from: firstStep, steps: options.steps)
        let (losses, valInitial, valFinal) = (trained.losses, trained.validationInitial, trained.validationFinal)
        let trainingSeconds = Date().timeIntervalSince(trainStart)

        // ---- output ----
        var results: [String: JSONValue] = [
            "steps": .number(Double(options.steps)),
            "final_loss": losses.last.map { .number($0) } ?? .null,
            "validation_loss_initial": valInitial.map { .number($0) } ?? .null,
            "validation_loss_final": valFinal.map { .number($0) } ?? .null,
            "samples": .number(Double(sampleCount)),
            "training_tokens": .number(Double(trainingTokens)),
            "synthesis_seconds": .number(synthesisSeconds),
            "training_seconds": .number(trainingSeconds),
        ]
        if losses.count > 0 { results["loss_curve"] = .array(losses.map { .number($0) }) }
        try writeCartridge(to: output, results: results)
        let bytes = (try? FileManager.default.attributesOfItem(atPath: output.path)[.size] as? Int) ?? 0
        return CompileSummary(documents: documents.count, corpusTokens: corpus.count, samples: sampleCount, trainingTokens: trainingTokens,
                              steps: options.steps, synthesisSeconds: synthesisSeconds, trainingSeconds: trainingSeconds,
                              totalSeconds: Date().timeIntervalSince(start), losses: losses,
                              validationLossInitial: valInitial, validationLossFinal: valFinal, outputBytes: bytes)
    }

    /// What this work directory belongs to: every setting but the step count (more steps continue
    /// the same training: the batch of step s does not depend on the total), the self-study
    /// version, the model and the documents.
    func job(documents: [Document]) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var settings = options
        settings.steps = 0
        return try encoder.encode(settings) + Data("|synthesis v\(Self.synthesisVersion)|\(identity.fingerprint)|".utf8)
            + Data(documents.map { "\($0.path):\($0.sha256)" }.joined(separator: ",").utf8)
    }

    /// The training and validation sequences of the objective, the corpus span the teacher read
    /// for each training sequence (distillation only), and how many conversations (or corpus
    /// windows) they come from. Validation is split by window and always weighs tokens equally,
    /// so its loss compares across weightings.
    func trainingData(corpus: [Int], work: WorkDirectory)
        throws -> (train: [TrainingSequence], trainSpans: [Range<Int>], validation: [TrainingSequence], samples: Int) {
        let tok = model.tokenizer
        var train: [TrainingSequence] = [], validation: [TrainingSequence] = []
        var trainSpans: [Range<Int>] = []
        var sampleCount = 0
        let study = SelfStudy(model: model, options: options)
        switch options.objective {
        case .distill:
            let groups = try synthesize(corpus: corpus, work: work)
            let sampledWindows = windows(of: corpus)
            let valGroups = options.validationFraction > 0 && groups.count >= 2
                ? max(1, Int((Double(groups.count) * options.validationFraction).rounded())) : 0
            for (g, group) in groups.enumerated() {
                let answered = group.filter { !$0.answer.isEmpty }
                // validation always weighs tokens equally, so its loss compares across weightings
                if g >= groups.count - valGroups {
                    validation += answered.map { SelfStudy.studentSequence($0, tokenizer: tok) }
                } else {
                    train += answered.map {
                        SelfStudy.studentSequence($0, tokenizer: tok, perConversation: options.lossWeighting == .conversation,
                                                  questionWeight: study.userTurnWeight($0.kind))
                    }
                    trainSpans += answered.map { study.teacherSpan(of: sampledWindows[$0.window], corpusLength: corpus.count) }
                }
                sampleCount += group.count
            }
        case .nextToken:
            let w = options.nextTokenWindow
            var windows: [TrainingSequence] = []
            var i = 0
            while i + 2 <= corpus.count {
                windows.append(.nextToken(Array(corpus[i..<min(corpus.count, i + w)])))
                i += w
            }
            let valCount = options.validationFraction > 0 && windows.count >= 2 ? max(1, Int(Double(windows.count) * options.validationFraction)) : 0
            train = Array(windows.dropLast(valCount))
            validation = Array(windows.suffix(valCount))
            sampleCount = windows.count
        }
        return (train, trainSpans, validation, sampleCount)
    }

    /// The corpus windows self-study reads, from the seed (the same on every run and resume).
    func windows(of corpus: [Int]) -> [CorpusWindow] {
        let windowCount = (options.samples + options.conversationsPerWindow - 1) / options.conversationsPerWindow
        return WindowSampler.windows(tokens: corpus, count: windowCount, minTokens: options.windowMinTokens,
                                     maxTokens: options.windowMaxTokens, seed: options.seed)
    }

    /// Synthesizes the conversation batches not yet in the work directory. A batch is
    /// `windowsPerBatch` windows of `conversationsPerWindow` conversations, decoded together and
    /// stored as one line, so a resumed compile decodes exactly the same batches.
    func synthesize(corpus: [Int], work: WorkDirectory) throws -> [[SelfStudySample]] {
        let per = options.conversationsPerWindow, perBatch = per * options.windowsPerBatch
        let windowCount = (options.samples + per - 1) / per
        let batchCount = (options.samples + perBatch - 1) / perBatch
        let corpusWindows = windows(of: corpus)
        var batches = try work.loadGroups(vocabSize: model.config.vocabSize)
        if batches.count > batchCount { batches = Array(batches.prefix(batchCount)) }
        if !batches.isEmpty { logger.info("resuming synthesis: \(batches.count) of \(batchCount) batches already done") }
        let study = SelfStudy(model: model, options: options)
        let resumed = batches.reduce(0) { $0 + $1.count }
        let progress = Progress("self-study", total: options.samples, unit: "conversations", startingAt: resumed)
        progress.update(resumed)
        for b in batches.count..<batchCount {
            let windows = (b * options.windowsPerBatch..<min(windowCount, (b + 1) * options.windowsPerBatch)).map { w in
                SelfStudy.Window(corpusWindow: corpusWindows[w], index: w, firstIndex: w * per, count: min(per, options.samples - w * per))
            }
            let batch = try study.conversations(windows: windows, corpus: corpus)
            try work.append(group: batch)
            batches.append(batch)
            progress.update(batches.reduce(0) { $0 + $1.count })
        }
        // validation is split by window, so its conversations are about windows training never saw
        var byWindow: [Int: [SelfStudySample]] = [:]
        for s in batches.joined() { byWindow[s.window, default: []].append(s) }
        return byWindow.keys.sorted().map { byWindow[$0]! }
    }
}
