import ArgumentParser
import CartridgeEvaluation
import CartridgeFormat
import CartridgeModel
import CartridgeRuntime
import Foundation

/// `cartridge eval --qa FILE.jsonl --docs DIR (--cartridge F.cart ... | --cartridges DIR) [--json]`, or
/// `cartridge eval --qa FILE.jsonl --cartridges DIR --retrieval-only [--json]`
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Answer NLL per token of reference answers with no context, the document in context, and cartridges.",
        discussion: """
        Each line of the QA file is {"doc": "file name in DOCS", "question": ..., "answer": ...}. Conditions: \
        none (the question alone), icl (the document as a system message), cartridge (the cartridge whose \
        provenance names the document, or the single one given), retrieved (with --cartridges: the top-1 \
        retrieval for the question). The question is one user turn without system prompt in every condition. \
        --retrieval-only skips the NLL: it ranks the cartridges of --cartridges for every question, as `ask \
        --cartridges` does, and reports recall@1, recall@3 and the rank of the cartridge holding each item's document.
        """)
    @OptionGroup var options: ModelOptions
    @Option(help: "Question/answer pairs, JSON lines.") var qa: String
    @Option(help: "Folder holding the documents named by the QA file (not needed with --retrieval-only).") var docs: String?
    @Option(name: .customLong("cartridge"), help: "A cartridge to evaluate (repeat for several).") var cartridgeFiles: [String] = []
    @Option(name: .customLong("cartridges"), help: "A folder of cartridges (matched by provenance, and retrieved).") var directory: String?
    @Flag(help: "Only rank the cartridges of --cartridges for each question: recall and ranks, no NLL.") var retrievalOnly = false
    @Flag(help: "Print JSON.") var json = false

    struct Item { var doc: String; var question: String; var answer: String; var line: Int }

    func run() throws {
        if retrievalOnly {
            guard let directory, cartridgeFiles.isEmpty else { throw ValidationError("--retrieval-only ranks the cartridges of --cartridges DIR; it takes no --cartridge") }
            return try runRetrieval(directory: directory)
        }
        guard !cartridgeFiles.isEmpty || directory != nil else { throw ValidationError("give --cartridge FILE (repeatable) or --cartridges DIR") }
        guard let docs else { throw ValidationError("give --docs DIR, the folder of the documents the QA file names") }
        let items = try readItems()
        let lm = try options.load()
        do {
            let rt = try CartridgeRuntime(model: lm)
            var carts: [LoadedCartridge] = try cartridgeFiles.map { try rt.load(URL(fileURLWithPath: $0)) }
            var library: CartridgeLibrary?
            if let dir = directory {
                let lib = try rt.openLibrary(URL(fileURLWithPath: dir))
                library = lib
                carts += try lib.entries.map { try lib.load($0) }
            }
            let tok = lm.tokenizer
            // every item is read, tokenized and checked against the context before any scoring
            var prepared: [(question: [Int], answer: [Int], system: [Int])] = []
            let longestCartridge = carts.map(\.length).max() ?? 0
            for (n, item) in items.enumerated() {
                guard let text = try? String(contentsOfFile: URL(fileURLWithPath: docs).appendingPathComponent(item.doc).path, encoding: .utf8) else {
                    throw CLIError("\(qa) line \(item.line): cannot read document \(item.doc) in \(docs)")
                }
                let question = StudentPrompt.ids(question: item.question, tokenizer: tok)
                let answer = tok.encode(item.answer, parseSpecial: false)
                let system = tok.encode("<|im_start|>system\n", parseSpecial: true) + tok.encode(text, parseSpecial: false) + tok.encode("<|im_end|>\n", parseSpecial: true)
                guard !answer.isEmpty else { throw CLIError("\(qa) line \(item.line): the answer has no tokens") }
                do {
                    try lm.model.checkContext(system.count + question.count + answer.count,
                                              what: "item \(n + 1) (\(qa) line \(item.line)) with document \(item.doc) in context")
                    try lm.model.checkContext(longestCartridge + question.count + answer.count,
                                              what: "item \(n + 1) (\(qa) line \(item.line)) behind a cartridge of \(longestCartridge) slots")
                } catch let e as ModelInputError {
                    throw CLIError(advice(e, hint: "shorten the document or the answer, or use smaller cartridges"))
                }
                prepared.append((question, answer, system))
            }
            var sums: [String: Double] = ["none": 0, "icl": 0, "cartridge": 0, "retrieved": 0]
            var hits = 0, hitsAt3 = 0
            var rows: [[String: Any]] = []
            for (item, (question, answer, system)) in zip(items, prepared) {
                let none = AnswerScorer.meanNLL(model: lm.model, context: question, answer: answer)
                let icl = AnswerScorer.meanNLL(model: lm.model, context: system + question, answer: answer)
                let matched = carts.count == 1 ? carts[0] : (carts.first { Self.holds($0.metadata, item.doc) } ?? carts[0])
                let withCartridge = AnswerScorer.meanNLL(model: lm.model, cache: try rt.makeCache([matched], extraCapacity: question.count + answer.count),
                                                         context: question, answer: answer)
                var row: [String: Any] = ["doc": item.doc, "line": item.line, "none": none, "icl": icl, "cartridge": withCartridge, "cartridge_name": matched.name]
                sums["none"]! += none
                sums["icl"]! += icl
                sums["cartridge"]! += withCartridge
                if let lib = library {
                    let (found, rank) = try Self.rank(item, in: lib, runtime: rt)
                    if let rank, rank <= 3 { hitsAt3 += 1 }
                    if rank == 1 { hits += 1 }
                    let c = try lib.load(found[0].entry)
                    let r = AnswerScorer.meanNLL(model: lm.model, cache: try rt.makeCache([c], extraCapacity: question.count + answer.count),
                                                 context: question, answer: answer)
                    sums["retrieved"]! += r
                    row["retrieved"] = r
                    row["retrieved_name"] = found[0].entry.name
                    row["retrieved_rank"] = rank ?? NSNull()
                }
                rows.append(row)
            }
            let n = Double(items.count)
            let mean = sums.mapValues { $0 / n }
            let gap = AnswerScorer.gapClosed(none: mean["none"]!, icl: mean["icl"]!, with: mean["cartridge"]!)
            var nll: [String: Any] = ["none": mean["none"]!, "icl": mean["icl"]!, "cartridge": mean["cartridge"]!]
            var out: [String: Any] = ["items": items.count, "nll": nll, "gap_closed": gap, "per_item": rows]
            if library != nil {
                nll["retrieved"] = mean["retrieved"]!
                out["nll"] = nll
                out["recall_at_1"] = Double(hits) / n
                out["recall_at_3"] = Double(hitsAt3) / n
            }
            if json {
                try printJSON(out)
            } else {
                print(String(format: "%-44@ %8@ %8@ %10@ %10@", "item" as NSString, "none" as NSString, "icl" as NSString, "cartridge" as NSString, "retrieved" as NSString))
                for (item, row) in zip(items, rows) {
                    let q = String(item.question.prefix(42))
                    let r = (row["retrieved"] as? Double).map { String(format: "%10.3f", $0) } ?? "         -"
                    print(String(format: "%-44@ %8.3f %8.3f %10.3f ", q as NSString, row["none"] as! Double, row["icl"] as! Double, row["cartridge"] as! Double) + r)
                }
                print(String(format: "mean NLL/token: none %.3f, icl %.3f, cartridge %.3f; gap closed %.1f%%", mean["none"]!, mean["icl"]!, mean["cartridge"]!, 100 * gap))
                if library != nil { print(String(format: "retrieved %.3f; recall@1 %.2f, recall@3 %.2f", mean["retrieved"]!, Double(hits) / n, Double(hitsAt3) / n)) }
            }
        } catch let e as CustomStringConvertible & Error {
            throw CLIError(e.description)
        }
    }

    /// `--retrieval-only`: every item's question through the runtime's retrieval over the folder,
    /// then recall@1, recall@3 and each item's rank. Loads the model only for its identity.
    func runRetrieval(directory: String) throws {
        let items = try readItems()
        let lm = try options.load()
        do {
            let rt = try CartridgeRuntime(model: lm)
            let lib = try rt.openLibrary(URL(fileURLWithPath: directory))
            let ranked = try items.map { try Self.rank($0, in: lib, runtime: rt) }
            let n = Double(items.count)
            let recall1 = Double(ranked.filter { $0.rank == 1 }.count) / n
            let recall3 = Double(ranked.filter { ($0.rank ?? .max) <= 3 }.count) / n
            if json {
                let rows: [[String: Any]] = zip(items, ranked).map { item, r in
                    ["line": item.line, "doc": item.doc, "question": item.question, "rank": r.rank ?? NSNull(),
                     "top": r.found.prefix(3).map { ["name": $0.entry.name, "score": Double($0.score)] }]
                }
                try printJSON(["items": items.count, "cartridges": lib.entries.count, "recall_at_1": recall1, "recall_at_3": recall3, "per_item": rows])
            } else {
                print(String(format: "%-6@ %-5@ %-16@ %@", "line" as NSString, "rank" as NSString, "retrieved" as NSString, "question" as NSString))
                for (item, r) in zip(items, ranked) {
                    print(String(format: "%-6ld %-5@ %-16@ %@", item.line, (r.rank.map(String.init) ?? "-") as NSString,
                                 r.found[0].entry.name as NSString, String(item.question.prefix(70)) as NSString))
                }
                print(String(format: "%ld items over %ld cartridges: recall@1 %.3f, recall@3 %.3f", items.count, lib.entries.count, recall1, recall3))
            }
        } catch let e as CustomStringConvertible & Error {
            throw CLIError(advice(e, hint: ""))
        }
    }

    /// Whether a cartridge was made from the document `doc` (a file name).
    static func holds(_ metadata: CartridgeMetadata, _ doc: String) -> Bool {
        metadata.sources.contains { URL(fileURLWithPath: $0.path).lastPathComponent == doc }
    }

    /// The library's cartridges ranked for the item's question (best first, all of them), and the
    /// 1-based rank of the first one made from the item's document (nil when none is).
    static func rank(_ item: Item, in library: CartridgeLibrary, runtime: CartridgeRuntime) throws
        -> (found: [(entry: CartridgeLibrary.Entry, score: Float)], rank: Int?) {
        let found = try runtime.retrieve(item.question, in: library, k: library.entries.count)
        return (found, found.firstIndex { holds($0.entry.metadata, item.doc) }.map { $0 + 1 })
    }

    func readItems() throws -> [Item] {
        guard let data = FileManager.default.contents(atPath: qa) else { throw CLIError("cannot read \(qa)") }
        var items: [Item] = []
        // line numbers count every line, blank ones included, as an editor shows them
        for (n, line) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated()
        where !line.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw CLIError("\(qa) line \(n + 1): not a JSON object: \(line.prefix(80))")
            }
            guard let doc = obj["doc"] as? String, let q = obj["question"] as? String, let a = obj["answer"] as? String, !a.isEmpty else {
                throw CLIError("\(qa) line \(n + 1): expected {\"doc\", \"question\", \"answer\"} strings with a non-empty answer")
            }
            items.append(Item(doc: doc, question: q, answer: a, line: n + 1))
        }
        guard !items.isEmpty else { throw CLIError("\(qa) holds no items") }
        return items
    }
}
