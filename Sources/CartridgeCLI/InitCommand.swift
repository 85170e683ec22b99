import ArgumentParser
import CartridgeCorpus
import CartridgeFormat
import CartridgeModel
import CartridgeRuntime
import Foundation

/// `cartridge init DIR_OR_FILE -o X.cart --size p`: an untrained cartridge (the paper's initialization).
struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Make an untrained cartridge: the KV cache of the documents' first p tokens, plus retrieval vectors.")
    @OptionGroup var options: ModelOptions
    @Argument(help: "A text file or a folder of documents.") var source: String
    @Option(name: .shortAndLong, help: "Output .cart file.") var output: String
    @Option(help: "Number of KV slots p.") var size = 128
    @Option(help: "Which tokens' KV to keep: first (the corpus' first p tokens) or attention (per layer and KV head, the tokens of the whole corpus that attention uses most).")
    var select: InitSelection = .first
    @Option(name: .customLong("keep-first"), help: "With --select attention: the first N tokens are kept in every layer, the rest selected (default 1: the sink only).")
    var keepFirst = 1
    @Option(help: ArgumentHelp("Tensor dtype in the file: \(TensorDType.choices).")) var dtype = "f16"

    func run() throws {
        guard size >= 2 else { throw ValidationError("--size must be at least 2 (slot 0 is the attention sink)") }
        guard keepFirst >= 1 && keepFirst <= size else { throw ValidationError("--keep-first must be in 1...\(size) (--size)") }
        guard let dt = TensorDType(rawValue: dtype) else { throw ValidationError("--dtype must be \(TensorDType.choices), not '\(dtype)'") }
        guard output.hasSuffix(".cart") else { throw ValidationError("--output must end in .cart") }
        let lm = try options.load()
        do {
            try lm.model.checkContext(size, what: "the cartridge size")
            let runtime = try CartridgeRuntime(model: lm)
            let docs = try DocumentIngest.read(URL(fileURLWithPath: source))
            let url = URL(fileURLWithPath: output)
            let c = try CartridgeBuilder.initialize(documents: docs, model: lm, identity: runtime.identity, embedder: try runtime.embedder(), size: size,
                                                    name: url.deletingPathExtension().lastPathComponent, dtype: dt, selection: select, keepFirst: keepFirst)
            try CartFile.write(c, to: url)
            let bytes = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0
            FileHandle.standardError.write(Data("wrote \(output): \(c.metadata.length) slots, \(docs.count) documents, \(c.metadata.chunks.count) retrieval chunks, \(bytes) bytes\n".utf8))
        } catch let e as CustomStringConvertible & Error {
            throw CLIError(advice(e, hint: "lower --size"))
        }
    }
}

extension InitSelection: ExpressibleByArgument {}
