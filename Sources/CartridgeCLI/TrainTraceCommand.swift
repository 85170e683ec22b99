import ArgumentParser
import CartridgeKernels
import CartridgeModel
import CartridgeTraining
import Foundation

/// The training contract of `Tests/Reference/README.md`: init a prefix from ids, freeze slot 0,
/// minimize the mean next-token loss of `ids` read after it with Adam, and print the trace.
struct TrainTraceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-trace",
        abstract: "Train a prefix on one sequence and print {\"losses\": [...], \"grad_norms\": [...], \"final_loss\": x}.")
    @OptionGroup var options: ModelOptions
    @Option(help: "JSON array of token ids that initialize the prefix (slot 0 is frozen).") var prefixIds: String
    @Option(help: "JSON array of token ids to train on (mean next-token loss).") var ids: String
    @Option(help: "Adam steps.") var steps = 3
    @Option(help: "Adam learning rate.") var lr: Float = 0.01

    func readIDs(_ path: String, _ flag: String) throws -> [Int] {
        guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("\(flag): cannot read \(path)") }
        guard let ids = try? JSONSerialization.jsonObject(with: data) as? [Int], !ids.isEmpty else {
            throw ValidationError("\(flag): \(path) must hold a non-empty JSON array of token ids")
        }
        return ids
    }

    func run() throws {
        let prefixIDs = try readIDs(prefixIds, "--prefix-ids"), trainIDs = try readIDs(ids, "--ids")
        guard trainIDs.count >= 2 else { throw ValidationError("--ids needs at least two tokens") }
        guard steps >= 0, lr > 0 else { throw ValidationError("need --steps >= 0 and --lr > 0") }
        let lm = try options.load()
        for id in prefixIDs + trainIDs where id < 0 || id >= lm.config.vocabSize {
            throw ValidationError("token id \(id) is outside the vocabulary (0..<\(lm.config.vocabSize))")
        }
        let prefix = TrainablePrefix(model: lm.model, ids: prefixIDs, frozen: 1)
        let batch = [TrainingSequence.nextToken(trainIDs)]
        let loop = TrainingLoop(trainer: PrefixTrainer(model: lm.model), prefix: prefix,
                                adam: Adam(config: AdamConfig(learningRate: lr), prefix: prefix), train: batch)
        var norms: [Double] = []
        loop.onStep = { _, _, gK, gV in norms.append(trainableGradientNorm(prefix: prefix, gradKeys: gK, gradValues: gV)) }
        let losses = try loop.run(steps: steps).losses
        let final = loop.trainer.loss(prefix: prefix, batch: batch).loss
        try printJSON(["losses": losses, "grad_norms": norms, "final_loss": final])
    }
}
