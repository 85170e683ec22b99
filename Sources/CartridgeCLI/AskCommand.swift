import ArgumentParser
import CartridgeCorpus
import CartridgeFormat
import CartridgeModel
import CartridgeRuntime
import Foundation

/// `cartridge ask [--cartridge F.cart]... [--cartridges DIR [--top K]] "question"`, or
/// `cartridge ask --context DIR "question"` (the documents in the context: the baseline).
struct AskCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ask",
        abstract: "Answer a question with cartridges in front of the model (given, or retrieved from a folder), or with documents in the context.")
    @OptionGroup var options: ModelOptions
    @Option(name: .customLong("cartridge"), help: "A cartridge to use (repeat to compose several, in order).") var cartridges: [String] = []
    @Option(name: .customLong("cartridges"), help: "A folder of cartridges to retrieve from.") var directory: String?
    @Option(help: "How many cartridges to retrieve from --cartridges.") var top = 1
    @Option(help: "A folder (or file) of documents to put in the context instead of cartridges, to compare with them.") var context: String?
    @Option(help: "Most tokens to generate.") var maxTokens = 256
    @Option(help: "Sampling temperature; 0 is greedy.") var temperature: Float = 0
    @Option(help: "Random seed for sampling.") var seed: UInt64 = 0
    @Flag(help: "Print {\"answer\", \"cartridges\": [{\"name\", \"score\"}], \"prefix_tokens\"}.") var json = false
    @Argument(help: "The question.") var question: String

    func run() throws {
        guard maxTokens > 0, top > 0, temperature >= 0 else { throw ValidationError("need --max-tokens > 0, --top > 0, --temperature >= 0") }
        guard context == nil || (cartridges.isEmpty && directory == nil) else {
            throw ValidationError("--context answers with the documents in the context; it does not take --cartridge or --cartridges")
        }
        let lm = try options.load()
        if let context {
            let runtime = try registryCall { try CartridgeRuntime(model: lm) }
            let documents = try registryCall { try DocumentIngest.read(URL(fileURLWithPath: context)) }
            let out = FileHandle.standardOutput
            do {
                let g = try runtime.answer(question, context: documents.map(\.text), maxTokens: maxTokens,
                                           sampling: SamplingParameters(temperature: temperature, seed: seed)) { _, piece in
                    if !json { out.write(Data(piece.utf8)) }
                    return true
                }
                if json { try printJSON(["answer": g.text, "documents": documents.map(\.path)]) } else { out.write(Data("\n".utf8)) }
            } catch let e as CustomStringConvertible & Error {
                throw CLIError(advice(e, hint: "use fewer or shorter documents, or a cartridge of them"))
            }
            return
        }
        do {
            let runtime = try CartridgeRuntime(model: lm)
            var chosen: [LoadedCartridge] = []
            var reported: [[String: Any]] = []
            for path in cartridges {
                let c = try runtime.load(URL(fileURLWithPath: path))
                chosen.append(c)
                reported.append(["name": c.name, "score": NSNull()])
            }
            if let dir = directory {
                let library = try runtime.openLibrary(URL(fileURLWithPath: dir))
                for match in try runtime.retrieve(question, in: library, k: top) {
                    chosen.append(try library.load(match.entry))
                    reported.append(["name": match.entry.name, "score": Double(match.score)])
                }
            }
            let out = FileHandle.standardOutput
            let g = try runtime.answer(question, with: chosen, maxTokens: maxTokens,
                                       sampling: SamplingParameters(temperature: temperature, seed: seed)) { _, piece in
                if !json { out.write(Data(piece.utf8)) }
                return true
            }
            if json {
                try printJSON(["answer": g.text, "cartridges": reported, "prefix_tokens": chosen.reduce(0) { $0 + $1.length }])
            } else {
                out.write(Data("\n".utf8))
            }
        } catch let e as CustomStringConvertible & Error {
            throw CLIError(e.description)
        }
    }
}
