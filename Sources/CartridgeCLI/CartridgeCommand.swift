import ArgumentParser
import CartridgeEmbedding
import CartridgeKernels
import CartridgeModel
import CartridgeRuntime
import Foundation
import Logging

struct CartridgeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cartridge",
        abstract: "Run the frozen model, and build and use cartridges (trained KV-cache prefixes).",
        subcommands: [TokenizeCommand.self, LogitsCommand.self, GenerateCommand.self, TrainTraceCommand.self,
                      InitCommand.self, AskCommand.self, EvalCommand.self, InspectCommand.self, ConvertCommand.self, EmbedCommand.self, PlotCommand.self, RegistryCommand.self,
                      ServeCommand.self])
}

/// Options every model-using subcommand takes.
struct ModelOptions: ParsableArguments {
    @Option(help: "Path to a GGUF model (default: the cached SmolLM2-135M-Instruct).")
    var model: String?

    @Option(help: "Threads for matrix products (default: all cores).")
    var threads: Int?

    func load() throws -> LanguageModel {
        let logger = Logger(label: "cartridges.cli")
        if let t = threads {
            guard t > 0 else { throw ValidationError("--threads must be at least 1") }
            BLAS.threads = t
        }
        guard OpenBLASSetup.checkAndLog(logger: logger) else {
            throw ValidationError("OpenBLAS's \(BLAS.coreName) kernels compute wrong results on this CPU; unset OPENBLAS_CORETYPE")
        }
        do {
            return try LanguageModel(path: model, logger: logger)
        } catch let e as CustomStringConvertible & Error {
            throw CLIError(advice(e, hint: ""))
        }
    }
}

/// A library error's message, with what to do about it on the command line (library messages
/// name no flags and no make targets). `hint` is added to errors about the context length.
func advice(_ error: CustomStringConvertible & Error, hint: String) -> String {
    switch error {
    case ModelInputError.contextOverflow, GenerationError.contextFull: return "\(error.description); \(hint)"
    case ModelLoadError.modelNotFound: return "\(error.description): run `make setup` to download the default model, or pass --model PATH"
    case EmbedderError.directoryNotFound, EmbedderError.missingFile, RuntimeError.noEmbedder:
        return "\(error.description); `make setup` (scripts/setup.sh) installs it"
    default: return error.description
    }
}

/// An error whose message is shown as is.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

func printJSON(_ object: Any) throws {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
    FileHandle.standardOutput.write(data)
    FileHandle.standardOutput.write("\n".data(using: .utf8)!)
}

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tokenize", abstract: "Print the token ids of a text as a JSON array.")
    @OptionGroup var options: ModelOptions
    @Option(help: "The text to tokenize.") var text: String
    @Flag(name: .customLong("no-special"), help: "Treat control-token strings such as <|im_start|> as plain text.")
    var noSpecial = false

    func run() throws {
        let path = options.model ?? ModelLocation.defaultModelPath
        guard FileManager.default.fileExists(atPath: path) else { throw CLIError(ModelLoadError.modelNotFound(path: path).description) }
        do {
            let tok = try Tokenizer(gguf: GGUFFile(path: path))
            try printJSON(tok.encode(text, parseSpecial: !noSpecial))
        } catch let e as GGUFError { throw CLIError(e.description) }
    }
}

struct LogitsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logits", abstract: "Print the top logits, mean and std of the last position for a list of ids.")
    @OptionGroup var options: ModelOptions
    @Option(help: "Comma-separated token ids, fed as-is at positions 0...") var ids: String
    @Option(help: "How many of the highest logits to print.") var top = 20

    func run() throws {
        let parsed = ids.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !parsed.isEmpty, parsed.allSatisfy({ $0 != nil }) else { throw ValidationError("--ids must be comma-separated integers, for example 1,2,3") }
        let list = parsed.map { $0! }
        let lm = try options.load()
        let logits: FloatBuffer
        do { logits = try lm.logits(ids: list) } catch let e as ModelInputError { throw CLIError(advice(e, hint: "pass fewer --ids")) }
        let n = lm.config.vocabSize
        let row = Array(UnsafeBufferPointer(start: logits.pointer, count: n))
        let mean = row.reduce(0.0) { $0 + Double($1) } / Double(n)
        let variance = row.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(n)
        let topIDs = row.indices.sorted { row[$0] > row[$1] }.prefix(max(0, top))
        try printJSON(["top": topIDs.map { [$0, Double(row[$0])] as [Any] }, "mean": mean, "std": variance.squareRoot()])
    }
}

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "generate", abstract: "Answer a question with the model (streams the answer).")
    @OptionGroup var options: ModelOptions
    @Option(help: "A user message, rendered with the model's chat template (default system prompt included).")
    var chat: String
    @Option(help: "Most tokens to generate.") var maxTokens = 256
    @Option(help: "Sampling temperature; 0 is greedy.") var temperature: Float = 0
    @Option(help: "Keep only the k most likely tokens (0: all).") var topK = 0
    @Option(help: "Nucleus sampling threshold.") var topP: Float = 1
    @Option(help: "Random seed for sampling.") var seed: UInt64 = 0
    @Flag(help: "Print {\"ids\": [...], \"text\": \"...\"} instead of streaming text.") var json = false

    func run() throws {
        guard maxTokens > 0 else { throw ValidationError("--max-tokens must be at least 1") }
        guard temperature >= 0, topP > 0, topP <= 1, topK >= 0 else { throw ValidationError("need --temperature >= 0, 0 < --top-p <= 1, --top-k >= 0") }
        let lm = try options.load()
        let ids = lm.chatIDs([ChatMessage(.user, chat)])
        let params = SamplingParameters(temperature: temperature, topK: topK, topP: topP, seed: seed)
        let out = FileHandle.standardOutput
        let result: Generation
        do {
            result = try lm.generate(promptIDs: ids, maxTokens: maxTokens, sampling: params) { _, piece in
                if !json { out.write(Data(piece.utf8)) }
                return true
            }
        } catch let e as CustomStringConvertible & Error { throw CLIError(advice(e, hint: "shorten the prompt or lower --max-tokens")) }
        if json {
            try printJSON(["ids": result.ids, "text": result.text])
        } else {
            out.write("\n".data(using: .utf8)!)
        }
    }
}
