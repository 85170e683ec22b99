import ArgumentParser
import CartridgeKernels
import CartridgeModel
import Foundation

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cartridge-bench",
        abstract: "Benchmarks (not tests): speed figures with anchors measured in the same run.",
        subcommands: [InferenceBench.self, TrainBench.self, RuntimeBench.self, ServeBench.self, BatchStepBench.self, SgemmBench.self])
}

/// Peak resident memory of this process so far, in bytes.
func peakRSS() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return usage.ru_maxrss * 1024
}

func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
}

/// Best-of-n wall time of a closure, in seconds.
func timeBest(_ reps: Int, _ body: () -> Void) -> Double {
    var best = Double.infinity
    for _ in 0..<reps {
        let t0 = ContinuousClock.now
        body()
        best = min(best, seconds(ContinuousClock.now - t0))
    }
    return best
}

/// The machine's sgemm rate on a square product, GFLOP/s.
func sgemmGFLOPS(size n: Int = 1024, reps: Int = 5) -> Double {
    let a = FloatBuffer(count: n * n), b = FloatBuffer(count: n * n), c = FloatBuffer(count: n * n)
    for i in 0..<(n * n) { a[i] = Float(i % 7) * 0.1; b[i] = Float(i % 5) * 0.2 }
    let t = timeBest(reps) { BLAS.gemm(m: n, n: n, k: n, a: a.pointer, lda: n, b: b.pointer, ldb: n, c: c.pointer, ldc: n) }
    return 2 * Double(n * n * n) / t / 1e9
}

struct SgemmBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sgemm", abstract: "OpenBLAS sgemm peak on this machine.")
    @Option var size = 1024
    func run() {
        print("OpenBLAS \(BLAS.coreName), \(BLAS.threads) threads: sgemm \(size)^3 \(String(format: "%.1f", sgemmGFLOPS(size: size))) GFLOP/s")
    }
}

struct InferenceBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inference", abstract: "Prompt processing and generation speed.")
    @Option(help: "GGUF model (default: cached SmolLM2).") var model: String?
    @Option(help: "Prompt tokens.") var pp = 512
    @Option(help: "Generated tokens.") var tg = 128
    @Option(help: "Repetitions (best is reported).") var reps = 3
    @Option(help: "Threads.") var threads = 2
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        BLAS.threads = threads
        let lm = try LanguageModel(path: model)
        let text = String(repeating: "Cartridges compress a corpus into a small trained KV cache. The quick brown fox jumps over the lazy dog. ", count: 200)
        let ids = Array(lm.tokenizer.encode(text, parseSpecial: false).prefix(pp))
        invariant(ids.count == pp)
        let ppTime = timeBest(reps) { _ = lm.prefill(ids, cache: lm.model.makeCache(capacity: pp)) }
        let tgTime = timeBest(reps) {
            let cache = lm.model.makeCache(capacity: 1 + tg)
            var logits = lm.model.forward(tokens: [[ids[0]]], caches: [cache])
            for _ in 0..<tg {
                let next = Vector.argmax(logits.pointer, lm.config.vocabSize)
                logits = lm.model.forward(tokens: [[next]], caches: [cache])
            }
        }
        let result: [String: Any] = [
            "engine": "cartridges", "threads": threads, "blas_core": BLAS.coreName,
            "pp_tokens": pp, "pp_tok_s": Double(pp) / ppTime,
            "tg_tokens": tg, "tg_tok_s": Double(tg) / tgTime,
            "peak_rss_mib": Double(peakRSS()) / 1048576,
        ]
        if json {
            let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(String(format: "cartridges (%@, %d threads): pp%d %.1f tok/s, tg%d %.1f tok/s, peak RSS %.0f MiB",
                         BLAS.coreName, threads, pp, Double(pp) / ppTime, tg, Double(tg) / tgTime, Double(peakRSS()) / 1048576))
        }
    }
}
