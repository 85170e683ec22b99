import ArgumentParser
import CartridgeCompiler
import CartridgeCorpus
import CartridgeEmbedding
import CartridgeFormat
import CartridgeKernels
import CartridgeModel
import CartridgeTraining
import Foundation
import Logging

struct CompileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cartridge-compile",
        abstract: "Compile a folder of documents into a trained cartridge (self-study + context distillation).",
        discussion: """
        Finished work (synthesized conversations, checkpoints, logs) is kept in a work directory next to the \
        output (NAME.cart.work, or --work-dir). Running the same command again after an interruption resumes \
        there; the .cart file appears only when the compile is complete.
        """,
        version: CompilerVersion.current)

    @Argument(help: "A folder of text documents (or one file).") var source: String
    @Option(name: .shortAndLong, help: "Output .cart file.") var output: String
    @Option(help: "Cartridge KV slots p.") var size: Int?
    @Option(name: .customLong("init"), help: "What the cartridge starts from: first (the KV of the corpus' first p tokens) or attention (per layer and KV head, the tokens of the whole corpus that attention uses most).") var initialization: InitSelection?
    @Option(help: "Self-study conversations to synthesize.") var samples: Int?
    // Each window option also answers to its earlier name (--per-chunk, --chunks-per-batch, --chunk-min, --chunk-max).
    @Option(name: [.customLong("per-window"), .customLong("per-chunk")], help: "Conversations per corpus window (decoded together, sharing the window's KV cache).") var perWindow: Int?
    @Option(name: [.customLong("windows-per-batch"), .customLong("chunks-per-batch")], help: "Corpus windows whose conversations decode together.") var windowsPerBatch: Int?
    @Option(help: "Optimizer steps.") var steps: Int?
    @Option(help: "Passes over the training conversations (sets --steps from the data size).") var epochs: Double?
    @Option(help: "Sequences per optimizer step.") var batchSize: Int?
    @Option(help: "Adam learning rate (default \(CompileOptions().learningRate)).") var lr: Float?
    @Option(name: .customLong("loss-weighting"), help: "How a batch's loss weighs answers: token (long answers weigh more) or conversation (each weighs the same).") var lossWeighting: LossWeighting?
    @Option(name: .customLong("lr-schedule"), help: "Learning-rate schedule: constant or cosine (decays to a tenth of --lr).") var lrSchedule: LearningRateSchedule?
    @Option(help: "Pull toward the initialization: each step also moves the prefix by -lr * anchor * (prefix - init) (default \(CompileOptions().anchor); 0: free training).") var anchor: Float?
    @Option(name: .customLong("key-anchor"), help: "The keys' own pull toward the initialization, when it should differ from --anchor's (which then acts on the values only): keys route attention, values carry content.") var keyAnchor: Float?
    @Option(help: "Random seed (windows, questions, data order).") var seed: UInt64?
    @Option(help: "distill (self-study, default) or next-token (raw-corpus baseline).") var objective: String?
    @Option(name: [.customLong("window-min"), .customLong("chunk-min")], help: "Shortest corpus window for self-study, in tokens.") var windowMin: Int?
    @Option(name: [.customLong("window-max"), .customLong("chunk-max")], help: "Longest corpus window for self-study, in tokens.") var windowMax: Int?
    @Option(help: "Longest synthesized answer, in tokens.") var maxAnswer: Int?
    @Option(name: .customLong("written-turn-weight"), help: "Weight of the teacher's distribution over user turns agent A wrote, relative to answer tokens (default \(CompileOptions().writtenTurnWeight); 0: context only).") var writtenTurnWeight: Float?
    @Option(name: .customLong("corpus-turn-weight"), help: "The same for user turns cut from the corpus (recall, recite, entity; default \(CompileOptions().corpusTurnWeight)).") var corpusTurnWeight: Float?
    @Option(name: .customLong("hidden-state-weight"), help: "Deep context distillation: weight of each layer's hidden states against the teacher's, relative to the KL (default \(CompileOptions().hiddenStateWeight); 0: off; the teacher's states cost a forward per step).") var hiddenStateWeight: Float?
    @Option(name: .customLong("teacher-context"), help: "What agent B and the teacher read: window (the window agent A read) or corpus (the whole corpus when it fits the context, else the longest span around the window); default \(CompileOptions().teacherContext.rawValue).") var teacherContext: TeacherContext?
    @Option(help: "Kinds of conversation, comma-separated, taken in turn (default: each of structuring,summarization,question,useCase,creative followed by recite and entity).") var kinds: String?
    @Option(help: "Fraction of conversations held out for validation.") var validation: Double?
    @Option(help: "Steps between checkpoints.") var checkpointEvery: Int?
    @Option(help: "Steps between validation losses (default: 40; each costs a forward pass over the held-out conversations).") var validateEvery: Int?
    @Option(help: "Also write a complete cartridge every N steps to WORK/snapshots/ (for quality-vs-time curves).") var snapshotEvery: Int?
    @Option(help: ArgumentHelp("Tensor dtype of the output: \(TensorDType.choices).")) var dtype: String?
    @Option(help: "GGUF model (default: the cached SmolLM2-135M-Instruct).") var model: String?
    @Option(help: "Work directory (default: OUTPUT.work next to the output).") var workDir: String?
    @Option(help: "Threads for matrix products (default: all cores).") var threads: Int?
    @Flag(help: "Quick settings for a demo (64 conversations, 24 steps).") var quick = false

    func options() throws -> CompileOptions {
        var o = quick ? CompileOptions.quick : CompileOptions()
        if let v = size { o.size = v }
        if let v = initialization { o.initialization = v }
        if let v = samples { o.samples = v }
        if let v = perWindow { o.conversationsPerWindow = v }
        if let v = windowsPerBatch { o.windowsPerBatch = v }
        if let v = steps { o.steps = v }
        if let v = batchSize { o.batchSize = v }
        if let v = lr { o.learningRate = v }
        if let v = anchor { o.anchor = v }
        if let v = keyAnchor { o.keyAnchor = v }
        if let v = lossWeighting { o.lossWeighting = v }
        if let v = lrSchedule { o.learningRateSchedule = v }
        if let v = seed { o.seed = v }
        if let v = objective {
            guard let obj = CompileObjective(rawValue: v) else { throw ValidationError("--objective must be distill or next-token") }
            o.objective = obj
        }
        if let v = windowMin { o.windowMinTokens = v }
        if let v = windowMax { o.windowMaxTokens = v }
        if let v = maxAnswer { o.maxAnswerTokens = v }
        if let v = teacherContext { o.teacherContext = v }
        if let v = writtenTurnWeight { o.writtenTurnWeight = v }
        if let v = corpusTurnWeight { o.corpusTurnWeight = v }
        if let v = hiddenStateWeight { o.hiddenStateWeight = v }
        if let v = kinds {
            o.seedKinds = try v.split(separator: ",").map { name in
                guard let k = SeedKind(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError("--kinds: unknown kind '\(name)'; known: \(SeedKind.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                return k
            }
        }
        if let v = validation { o.validationFraction = v }
        if let v = checkpointEvery { o.checkpointEvery = v }
        if let v = dtype {
            guard let d = TensorDType(rawValue: v) else { throw ValidationError("--dtype must be \(TensorDType.choices), not '\(v)'") }
            o.dtype = d
        }
        if let e = epochs {
            guard e > 0 else { throw ValidationError("--epochs must be positive") }
            let trainSamples = Double(o.samples) * (1 - o.validationFraction)
            let steps = (e * trainSamples / Double(max(1, o.batchSize))).rounded()
            guard steps <= Double(CompileOptions.maxSteps) else {
                throw ValidationError("--epochs \(e) means \(steps) steps; at most \(CompileOptions.maxSteps)")
            }
            o.steps = max(1, Int(steps))
        }
        let problems = o.validate()
        guard problems.isEmpty else {
            throw ValidationError(problems.map { "\(Self.flag(for: $0.option)) must be \($0.requirement)" }.joined(separator: "; "))
        }
        return o
    }

    func run() throws {
        let opts = try options()
        guard output.hasSuffix(".cart") else { throw ValidationError("--output must end in .cart") }
        if let t = threads {
            guard t > 0 else { throw ValidationError("--threads must be at least 1") }
            BLAS.threads = t
        }
        let logger = Logger(label: "cartridges.compile")
        OpenBLASSetup.checkAndLog(logger: logger)
        do {
            let lm = try LanguageModel(path: model, logger: logger)
            let docs = try DocumentIngest.read(URL(fileURLWithPath: source), logger: logger)
            let out = URL(fileURLWithPath: output)
            let work = workDir.map { URL(fileURLWithPath: $0) }
            let compiler = try Compiler(model: lm, options: opts, logger: logger)
            if let n = snapshotEvery {
                guard n > 0 else { throw ValidationError("--snapshot-every must be at least 1") }
                compiler.snapshotEvery = n
            }
            if let n = validateEvery {
                guard n > 0 else { throw ValidationError("--validate-every must be at least 1") }
                compiler.validateEvery = n
            }
            let s = try compiler.compile(documents: docs, output: out, workDirectory: work)
            var report = """
            compiled \(output): \(s.documents) documents, \(s.corpusTokens) corpus tokens -> \(opts.size) KV slots, \(s.outputBytes) bytes
              \(opts.objective == .distill ? "self-study: \(s.samples) samples" : "data:       \(s.samples) corpus windows") in \(String(format: "%.1f", s.synthesisSeconds)) s
              training:   \(s.steps) steps on \(s.trainingTokens) tokens in \(String(format: "%.1f", s.trainingSeconds)) s
            """
            if let first = s.losses.first, let last = s.losses.last {
                report += "\n  loss:       \(String(format: "%.4f", first)) -> \(String(format: "%.4f", last)) (steps run now: \(s.losses.count))"
            }
            if let a = s.validationLossInitial, let b = s.validationLossFinal {
                report += "\n  validation: \(String(format: "%.4f", a)) -> \(String(format: "%.4f", b))"
            } else if let b = s.validationLossFinal {
                report += "\n  validation: \(String(format: "%.4f", b))"
            }
            report += "\n  total:      \(String(format: "%.1f", s.totalSeconds)) s\n"
            FileHandle.standardError.write(Data(report.utf8))
        } catch let e as ValidationError {
            throw e
        } catch let e as CustomStringConvertible & Error {
            throw CompileFailure(description: Self.advice(e))  // exit status 1, without the usage text
        }
    }

    /// The command-line flag of a `CompileOptions` property.
    static func flag(for option: String) -> String {
        let flags = ["conversationsPerWindow": "--per-window", "windowsPerBatch": "--windows-per-batch", "windowMinTokens": "--window-min",
                     "windowMaxTokens": "--window-max", "maxAnswerTokens": "--max-answer", "seedKinds": "--kinds", "learningRate": "--lr",
                     "validationFraction": "--validation", "writtenTurnWeight": "--written-turn-weight", "corpusTurnWeight": "--corpus-turn-weight", "hiddenStateWeight": "--hidden-state-weight", "keyAnchor": "--key-anchor", "checkpointEvery": "--checkpoint-every", "batchSize": "--batch-size"]
        return flags[option] ?? (["size", "samples", "steps", "anchor"].contains(option) ? "--\(option)" : "the setting \(option)")
    }

    /// A library error's message with what to do about it on this command line.
    static func advice(_ error: CustomStringConvertible & Error) -> String {
        switch error {
        case WorkDirectoryError.settingsChanged: return "\(error.description) (--work-dir)"
        case let WorkDirectoryError.trainedPast(_, step, _): return "\(error.description) (pass --steps \(step) or more)"
        case ModelLoadError.modelNotFound: return "\(error.description): run `make setup` to download the default model, or pass --model PATH"
        case EmbedderError.directoryNotFound, EmbedderError.missingFile: return "\(error.description); `make setup` (scripts/setup.sh) installs it"
        default: return error.description
        }
    }
}

/// A failed compile: the library error's message, shown as is.
struct CompileFailure: Error, CustomStringConvertible {
    let description: String
}

// ArgumentParser parses these by raw value and lists the allowed values in help and errors.
extension LossWeighting: ExpressibleByArgument {}
extension TeacherContext: ExpressibleByArgument {}
extension InitSelection: ExpressibleByArgument {}
extension LearningRateSchedule: ExpressibleByArgument {}
