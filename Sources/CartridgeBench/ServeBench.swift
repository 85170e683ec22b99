import ArgumentParser
import AsyncHTTPClient
import CartridgeFormat
import CartridgeModel
import CartridgeRegistry
import CartridgeRuntime
import CartridgeServer
import Foundation
import NIOCore

/// Load on `cartridge serve`, over loopback, bounded in requests: 1, 8 and 32 concurrent clients,
/// each on one of the cartridges, then the same with each request carrying its document in the
/// context instead; then resident memory over a long run of requests.
struct ServeBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Load test of the server: tokens/s, latency and errors at 1, 8 and 32 clients, cartridges vs documents in context; RSS over many requests.")
    @Option(help: "GGUF model (default: cached SmolLM2).") var model: String?
    @Option(help: "Cartridges (one document each).") var cartridges = 8
    @Option(help: "Cartridge slots p.") var slots = 128
    @Option(help: "Tokens per document (what the in-context requests carry).") var documentTokens = 1024
    @Option(help: "Tokens generated per request.") var maxTokens = 32
    @Option(help: "Concurrent client counts.") var clients = "1,8,32"
    @Option(help: "Requests in each run (spread over its clients).") var requests = 64
    @Option(help: "Requests of the resident-memory run (8 clients).") var rssRequests = 1000
    @Option(help: "Sequences decoded together (the server's --max-batch).") var maxBatch = 32
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var outcome: Result<[String: Any], Error> = .success([:])
        Task {
            do { outcome = .success(try await measure()) } catch { outcome = .failure(error) }
            done.signal()
        }
        done.wait()
        let result = try outcome.get()
        if json {
            print(String(decoding: try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys]), as: UTF8.self))
        }
    }

    struct Run {
        var tokens = 0, errors = 0
        var latencies: [Double] = []
        var wall = 0.0
        var tokensPerSecond: Double { Double(tokens) / wall }
        func percentile(_ p: Double) -> Double {
            guard !latencies.isEmpty else { return .nan }
            let sorted = latencies.sorted()
            return sorted[min(sorted.count - 1, Int((p * Double(sorted.count)).rounded(.up)) - 1)]
        }
    }

    func measure() async throws -> [String: Any] {
        let lm = try LanguageModel(path: model)
        let rt = try CartridgeRuntime(model: lm)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cartridges-serve-bench-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let registry = try SQLiteRegistry(directory: dir, model: rt.identity)
        // one document per cartridge, each on its own subject so the prompts differ
        let subjects = ["lighthouse", "orchard", "glacier", "railway", "observatory", "vineyard", "harbour", "library", "forge", "meadow",
                        "canal", "monastery", "quarry", "bakery", "mill", "ferry"]
        var documents: [String] = []
        for i in 0..<cartridges {
            let subject = subjects[i % subjects.count]
            var text = ""
            var n = 0
            while lm.tokenizer.encode(text, parseSpecial: false).count < documentTokens {
                text += "Entry \(n) of the \(subject) log: on day \(n * 7 % 31 + 1) the keeper of the \(subject) counted \(n * 13 % 97) visitors and wrote that the \(subject) needed \(n % 5 + 1) repairs. "
                n += 1
            }
            let ids = Array(lm.tokenizer.encode(text, parseSpecial: false).prefix(documentTokens))
            documents.append(lm.tokenizer.decode(ids))
            let c = benchCartridge(rt, ids: Array(ids.prefix(slots)), text: text, name: "doc\(i)")
            _ = try registry.push(name: "doc\(i)", bytes: try CartFile.encode(c))
        }
        var options = ServerOptions()
        options.port = 0
        options.maxBatch = maxBatch
        options.maxQueue = 1024
        let server = try CartridgeServer(runtime: rt, registry: registry, options: options)
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let serving = Task { try await server.run { continuation.yield($0); continuation.finish() } }
        var it = ports.makeAsyncIterator()
        guard let port = await it.next() else { throw ValidationError("the server did not start") }
        let url = "http://127.0.0.1:\(port)/v1/chat/completions"
        let base = server.baseModelID

        func body(_ i: Int, inContext: Bool, maxTokens: Int) -> [String: Any] {
            let question = "What did the keeper write in entry 3?"
            return inContext
                ? ["model": base, "messages": [["role": "system", "content": documents[i]], ["role": "user", "content": question]],
                   "max_tokens": maxTokens, "temperature": 0]
                : ["model": "doc\(i)", "messages": [["role": "user", "content": question]], "max_tokens": maxTokens, "temperature": 0]
        }
        func load(clients: Int, requests: Int, inContext: Bool, maxTokens: Int, onDone: (@Sendable (Int) -> Void)? = nil) async throws -> Run {
            let counter = Counter()
            let bodies = try (0..<cartridges).map { try JSONSerialization.data(withJSONObject: body($0, inContext: inContext, maxTokens: maxTokens)) }
            let cartridges = self.cartridges
            let t0 = ContinuousClock.now
            var run = try await withThrowingTaskGroup(of: Run.self) { group in
                for c in 0..<clients {
                    group.addTask {
                        var mine = Run()
                        while let k = counter.next(limit: requests) {
                            var request = HTTPClientRequest(url: url)
                            request.method = .POST
                            request.headers.add(name: "Content-Type", value: "application/json")
                            request.body = .bytes(ByteBuffer(bytes: bodies[(c + k) % cartridges]))
                            let start = ContinuousClock.now
                            do {
                                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(600))
                                let bytes = try await response.body.collect(upTo: 1 << 20)
                                let reply = (try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView))) as? [String: Any]
                                if response.status == .ok, let usage = reply?["usage"] as? [String: Int] {
                                    mine.tokens += usage["completion_tokens"] ?? 0
                                } else {
                                    mine.errors += 1
                                }
                            } catch {
                                mine.errors += 1
                            }
                            mine.latencies.append(seconds(ContinuousClock.now - start))
                            onDone?(k)
                        }
                        return mine
                    }
                }
                var all = Run()
                for try await r in group { all.tokens += r.tokens; all.errors += r.errors; all.latencies += r.latencies }
                return all
            }
            run.wall = seconds(ContinuousClock.now - t0)
            return run
        }

        var result: [String: Any] = ["cartridges": cartridges, "slots": slots, "document_tokens": documentTokens, "max_tokens": maxTokens,
                                     "requests_per_run": requests, "max_batch": maxBatch]
        _ = try await load(clients: 1, requests: 2, inContext: false, maxTokens: 4)  // warm up
        let counts = clients.split(separator: ",").compactMap { Int($0) }
        print("mode        clients  requests  tokens   tok/s   p50 s   p99 s  errors")
        for inContext in [false, true] {
            let mode = inContext ? "in-context" : "cartridge"
            for c in counts {
                let r = try await load(clients: c, requests: requests, inContext: inContext, maxTokens: maxTokens)
                print(String(format: "%-10@ %8d %9d %7d %7.1f %7.2f %7.2f %7d", mode as NSString, c, requests, r.tokens, r.tokensPerSecond,
                             r.percentile(0.5), r.percentile(0.99), r.errors))
                result["\(mode)_\(c)"] = ["tokens": r.tokens, "tok_s": r.tokensPerSecond, "p50_s": r.percentile(0.5), "p99_s": r.percentile(0.99),
                                          "errors": r.errors, "wall_s": r.wall]
            }
        }
        // resident memory over a long run: sampled every 100 requests
        let samples = RSSSamples()
        let r = try await load(clients: 8, requests: rssRequests, inContext: false, maxTokens: 4) { k in
            if (k + 1) % 100 == 0 { samples.add(residentBytes()) }
        }
        let mib = samples.values.map { Double($0) / 1048576 }
        print(String(format: "RSS over %d requests (8 clients): %@ MiB; errors %d", rssRequests,
                     mib.map { String(format: "%.0f", $0) }.joined(separator: ", ") as NSString, r.errors))
        result["rss_mib"] = mib
        result["rss_errors"] = r.errors
        await server.shutdown()
        _ = try? await serving.value
        return result
    }
}

/// Hands out request numbers 0..<limit to concurrent clients.
final class Counter: @unchecked Sendable {
    private var n = 0
    private let lock = NSLock()
    func next(limit: Int) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard n < limit else { return nil }
        n += 1
        return n - 1
    }
}

final class RSSSamples: @unchecked Sendable {
    private var list: [Int] = []
    private let lock = NSLock()
    func add(_ v: Int) { lock.lock(); list.append(v); lock.unlock() }
    var values: [Int] { lock.lock(); defer { lock.unlock() }; return list }
}

/// Resident memory of this process now, in bytes (/proc/self/statm).
func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    return fields.count > 1 ? (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
}

/// One batched decoding step (every sequence one new token over its own 160-slot cache) for
/// several batch sizes, and a prompt's prefill for several lengths: what the server's scheduler
/// runs, without HTTP.
struct BatchStepBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "batch", abstract: "Batched decoding step and short-prompt prefill times.")
    @Option(help: "GGUF model (default: cached SmolLM2).") var model: String?
    @Option(help: "Batch sizes.") var sizes = "1,2,4,8,16,32"
    @Option(help: "Prompt lengths for the prefill times.") var prompts = "8,16,24,32,64,128"

    func run() throws {
        let lm = try LanguageModel(path: model)
        let ids = lm.tokenizer.encode(String(repeating: "The keeper of the lighthouse counted the ships and wrote them down. ", count: 20), parseSpecial: false)
        for n in sizes.split(separator: ",").compactMap({ Int($0) }) {
            let caches = (0..<n).map { _ in lm.model.makeCache(capacity: 200) }
            for c in caches { _ = lm.prefill(Array(ids.prefix(160)), cache: c) }
            let t = timeBest(5) {
                _ = lm.model.forward(tokens: (0..<n).map { [ids[$0]] }, caches: caches)
                for c in caches { c.truncate(to: 160) }
            }
            print(String(format: "decode step, batch %3d: %7.2f ms (%6.1f tok/s)", n, t * 1000, Double(n) / t))
        }
        for p in prompts.split(separator: ",").compactMap({ Int($0) }) {
            let t = timeBest(3) { _ = lm.prefill(Array(ids.prefix(p)), cache: lm.model.makeCache(capacity: p)) }
            print(String(format: "prefill %4d tokens: %7.2f ms", p, t * 1000))
        }
    }
}
