import ArgumentParser
import CartridgeKernels
import CartridgeModel
import CartridgeTraining
import Foundation

struct TrainBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train", abstract: "Seconds per optimizer step of prefix training on the real model.")
    @Option(help: "GGUF model (default: cached SmolLM2).") var model: String?
    @Option(help: "Prefix slots p.") var prefix = 256
    @Option(help: "Sequences per batch.") var batch = 4
    @Option(help: "Tokens per sequence.") var seq = 256
    @Option(help: "Timed steps (after one warm-up step).") var steps = 3
    @Option(help: "Threads.") var threads = 2
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        BLAS.threads = threads
        let lm = try LanguageModel(path: model)
        let c = lm.config
        let text = String(repeating: "Cartridges compress a corpus into a small trained KV cache that a frozen model reads before the question. ", count: 400)
        let ids = lm.tokenizer.encode(text, parseSpecial: false)
        invariant(ids.count >= prefix + batch * seq)
        let peak = sgemmGFLOPS()
        let p = TrainablePrefix(model: lm.model, ids: [1] + Array(ids.prefix(prefix - 1)), frozen: 1)
        let trainer = PrefixTrainer(model: lm.model)
        let adam = Adam(config: AdamConfig(learningRate: 0.02), prefix: p)
        let gK = FloatBuffer(count: p.keys.count), gV = FloatBuffer(count: p.values.count)
        let sequences = (0..<batch).map { TrainingSequence.nextToken(Array(ids[(prefix + $0 * seq)..<(prefix + ($0 + 1) * seq)])) }
        func step() { _ = trainer.lossAndGradient(prefix: p, batch: sequences, gradKeys: gK, gradValues: gV); adam.update(prefix: p, gradKeys: gK, gradValues: gV) }
        step()
        var times: [Double] = []
        for _ in 0..<steps {
            let t0 = ContinuousClock.now
            step()
            times.append(seconds(ContinuousClock.now - t0))
        }
        let t = times.min()!
        // matrix-product FLOPs of one step (forward, backward without weight gradients, attention recompute)
        let rows = Double(batch * seq), hd = Double(c.headDim), D = Double(c.dim), F = Double(c.ffnDim), V = Double(c.vocabSize)
        let qDim = Double(c.heads) * hd, kvDim = Double(c.kvHeads) * hd
        let perRowLayer = 2 * (D * qDim + 2 * D * kvDim + qDim * D + 3 * D * F)
        // one (n queries) x (visible keys) x hd product, over the causal query blocks actually computed
        let blockRows = 64
        let attention = Double(batch * c.heads) * hd * stride(from: 0, to: seq, by: blockRows).reduce(0.0) { acc, t0 in
            let t1 = min(seq, t0 + blockRows)
            return acc + Double(t1 - t0) * Double(prefix + t1)
        }
        let layers = Double(c.layers)
        let forward = layers * (rows * perRowLayer + 4 * attention)
        let backward = layers * (rows * perRowLayer + 10 * attention) - rows * 2 * D * (qDim + 2 * kvDim)
        let head = 2 * 2 * (rows - Double(batch)) * D * V
        let flops = forward + backward + head
        let result: [String: Any] = [
            "prefix": prefix, "batch": batch, "seq": seq, "threads": threads,
            "seconds_per_step": t, "tokens_per_s": rows / t, "gflop_per_step": flops / 1e9,
            "gflop_s": flops / t / 1e9, "sgemm_peak_gflop_s": peak, "fraction_of_peak": flops / t / 1e9 / peak,
            "activation_mib": Double(trainer.activationBytes(rows: batch * seq)) / 1048576,
            "peak_rss_mib": Double(peakRSS()) / 1048576,
        ]
        if json {
            print(String(decoding: try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys]), as: UTF8.self))
        } else {
            print(String(format: "train p=%d, %dx%d tokens: %.2f s/step, %.0f tok/s, %.0f GFLOP/step, %.0f GFLOP/s (%.0f%% of sgemm peak %.0f), activations %.0f MiB, peak RSS %.0f MiB",
                         prefix, batch, seq, t, rows / t, flops / 1e9, flops / t / 1e9, 100 * flops / t / 1e9 / peak, peak,
                         Double(trainer.activationBytes(rows: batch * seq)) / 1048576, Double(peakRSS()) / 1048576))
        }
    }
}
