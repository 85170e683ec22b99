import ArgumentParser
import CartridgeEmbedding
import CartridgeKernels
import Foundation
import Logging

/// Prints the retrieval embedding (all-MiniLM-L6-v2) of a text.
struct EmbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Print the sentence embedding (all-MiniLM-L6-v2, L2-normalized) of a text.")

    @Option(help: "The text to embed (cut to 256 word pieces, [CLS] and [SEP] included).") var text: String
    @Flag(help: "Print {\"ids\": [...], \"embedding\": [...]} instead of a summary line.") var json = false
    @Option(help: "Directory of the embedding model, as `make setup` installs it.")
    var embedder: String = MiniLMEmbedder.defaultDirectory.path

    func run() throws {
        let logger = Logger(label: "cartridges.cli")
        guard OpenBLASSetup.checkAndLog(logger: logger) else {
            throw ValidationError("OpenBLAS's \(BLAS.coreName) kernels compute wrong results on this CPU; unset OPENBLAS_CORETYPE")
        }
        let model: MiniLMEmbedder
        do {
            model = try MiniLMEmbedder(directory: URL(fileURLWithPath: embedder), logger: logger)
        } catch let e as EmbedderError {
            throw CLIError(advice(e, hint: ""))
        }
        let ids = model.tokenize(text)
        let start = ContinuousClock.now
        let vector = model.embed(ids: ids)
        let elapsed = ContinuousClock.now - start
        if json {
            try printJSON(["ids": ids, "embedding": vector])
        } else {
            let head = vector.prefix(4).map { String(format: "%.4f", $0) }.joined(separator: ", ")
            print("\(ids.count) tokens -> \(vector.count) floats [\(head), ...] in \(String(format: "%.1f", Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1e3)) ms")
        }
    }
}
