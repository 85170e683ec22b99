import ArgumentParser
import CartridgeCorpus
import CartridgeFormat
import CartridgeKernels
import CartridgeModel
import CartridgeRuntime
import Foundation

struct RuntimeBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runtime",
        abstract: "Cartridge load time, retrieval latency, decoding with a cartridge vs the corpus in context, bytes.")
    @Option(help: "GGUF model (default: cached SmolLM2).") var model: String?
    @Option(help: "Cartridge slots.") var slots = 512
    @Option(help: "Corpus tokens placed in the context for the comparison.") var corpus = 4096
    @Option(help: "Generated tokens per decoding measurement.") var tokens = 64
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let lm = try LanguageModel(path: model)
        let rt = try CartridgeRuntime(model: lm)
        let c = lm.config
        var result: [String: Any] = ["slots": slots, "corpus_tokens": corpus]

        // a corpus of `corpus` tokens and a cartridge of its first `slots` tokens
        let sentence = "The lighthouse keeper wrote down the tides, the ships and the weather of every night in a red notebook. "
        let text = String(repeating: sentence, count: corpus / 18 + 10)
        let corpusIDs = Array(lm.tokenizer.encode("<|im_start|>system\n", parseSpecial: true) + lm.tokenizer.encode(text, parseSpecial: false)).prefix(corpus)
        let cartridge = benchCartridge(rt, ids: Array(corpusIDs.prefix(slots)), text: text, name: "bench")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cartridges-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("bench.cart")
        try CartFile.write(cartridge, to: url)
        let fileBytes = (try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0

        // load time (read, verify, decompress, widen to f32)
        let load = timeBest(5) { _ = try? rt.load(url) }
        result["load_ms"] = load * 1000
        result["cartridge_file_bytes"] = fileBytes
        result["cartridge_kv_bytes_f32"] = 2 * c.layers * c.kvHeads * slots * c.headDim * 4
        result["corpus_kv_bytes_f32"] = c.kvValuesPerToken * corpus * 4
        result["memory_ratio"] = Double(corpus) / Double(slots)

        // retrieval over synthetic cartridges, one vector each
        let dim = 384
        for n in [1_000, 100_000] {
            var index = ExactIndex(dimension: dim)
            var all = [Float]()
            all.reserveCapacity(n * dim)
            for _ in 0..<n { all += randomUnitVector(dim) }
            for i in 0..<n { _ = index.add(vectors: Array(all[(i * dim)..<((i + 1) * dim)]), words: [nil]) }
            let q = RetrievalQuery(vector: randomUnitVector(dim), words: [])
            result["retrieval_ms_\(n)"] = timeBest(5) { _ = index.search(q, k: 5) } * 1000
        }
        let loaded = try rt.load(url)
        let embedder = try rt.embedder()
        result["embed_query_ms"] = timeBest(5) { _ = embedder.embed("Which notebook did the lighthouse keeper use?") } * 1000

        // decoding: after the cartridge vs after the whole corpus in the context
        let question = StudentPrompt.ids(question: "What did the keeper write down?", tokenizer: lm.tokenizer)
        func decode(_ cache: KVCache) -> Double {
            var logits = lm.model.forward(tokens: [question], caches: [cache])
            let t0 = ContinuousClock.now
            for _ in 0..<tokens {
                logits = lm.model.forward(tokens: [[Vector.argmax(logits.pointer, c.vocabSize)]], caches: [cache])
            }
            return Double(tokens) / seconds(ContinuousClock.now - t0)
        }
        var ttftCartridge = Double.infinity, ttftCorpus = Double.infinity
        var tpsCartridge = 0.0, tpsCorpus = 0.0
        for _ in 0..<2 {
            let t0 = ContinuousClock.now
            let cc = try rt.makeCache([loaded], extraCapacity: question.count + tokens + 1)
            _ = lm.model.forward(tokens: [question], caches: [cc])
            ttftCartridge = min(ttftCartridge, seconds(ContinuousClock.now - t0))
            cc.truncate(to: slots)
            tpsCartridge = max(tpsCartridge, decode(cc))

            let t1 = ContinuousClock.now
            let full = lm.model.makeCache(capacity: corpus + question.count + tokens + 1)
            _ = lm.prefill(Array(corpusIDs), cache: full)
            _ = lm.model.forward(tokens: [question], caches: [full])
            ttftCorpus = min(ttftCorpus, seconds(ContinuousClock.now - t1))
            full.truncate(to: corpus)
            tpsCorpus = max(tpsCorpus, decode(full))
        }
        result["decode_tok_s_cartridge"] = tpsCartridge
        result["decode_tok_s_corpus_in_context"] = tpsCorpus
        result["first_token_s_cartridge"] = ttftCartridge
        result["first_token_s_corpus_in_context"] = ttftCorpus
        if json {
            print(String(decoding: try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys]), as: UTF8.self))
        } else {
            for k in result.keys.sorted() { print("\(k): \(result[k]!)") }
        }
    }
}

/// An untrained cartridge of `ids` (the model's KV of them) with 8 random retrieval vectors.
func benchCartridge(_ rt: CartridgeRuntime, ids: [Int], text: String, name: String) -> Cartridge {
    let lm = rt.model
    let (keys, values) = CartridgeBuilder.kvTensors(model: lm.model, ids: ids)
    let dim = 384
    let vectors = (0..<8).flatMap { _ in randomUnitVector(dim) }
    let chunks = (0..<8).map { _ in RetrievalPassage(source: 0, start: 0, end: 0, preview: "") }
    let meta = CartridgeBuilder.metadata(name: name, model: lm, identity: rt.identity, length: ids.count, frozen: 1, dtype: .f16,
                                         documents: [DocumentIngest.document(data: Data(text.utf8), path: "\(name).txt")!],
                                         chunks: chunks, embeddingDimension: dim, recipe: [:], results: [:])
    return Cartridge(metadata: meta, keys: keys, values: values, retrievalVectors: vectors)
}

func randomUnitVector(_ n: Int) -> [Float] {
    var v = (0..<n).map { _ in Float.random(in: -1...1) }
    let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
    for i in v.indices { v[i] /= norm }
    return v
}
