import Foundation
import Prometheus

/// The server's Prometheus metrics, served at `GET /metrics`. Chat metrics carry the cartridge
/// name and version that served them (`base` and `-` for the model alone; a composed request
/// counts once for each of its cartridges).
final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let loadedBytes: Gauge
    private let loadedCartridges: Gauge
    private let queueDepth: Gauge
    private let runningSequences: Gauge
    private let batchSize: ValueHistogram
    static let latencyBuckets: [Duration] = [0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64].map { .milliseconds(Int($0 * 1000)) }

    init() {
        loadedBytes = registry.makeGauge(descriptor: Self.name("loaded_cartridge", "bytes", "Bytes of cartridge tensors held in memory."))
        loadedCartridges = registry.makeGauge(descriptor: Self.name("loaded_cartridges", "", "Cartridge versions held in memory."))
        queueDepth = registry.makeGauge(descriptor: Self.name("queue_depth", "", "Requests waiting for a batch slot."))
        runningSequences = registry.makeGauge(descriptor: Self.name("running_sequences", "", "Sequences in the running batch."))
        batchSize = registry.makeValueHistogram(descriptor: Self.name("decode_batch_size", "", "Sequences decoded together per step."),
                                                buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256])
    }

    private static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "cartridges", metricName: metric, unitName: unit, helpText: help)
    }

    /// One HTTP request answered (any route), by route pattern and status code.
    func request(route: String, status: Int) {
        registry.makeCounter(descriptor: Self.name("http_requests", "total", "HTTP requests answered."),
                             labels: [("route", route), ("status", String(status))]).increment()
        if status >= 400 {
            registry.makeCounter(descriptor: Self.name("http_errors", "total", "HTTP requests answered with an error status."),
                                 labels: [("route", route), ("status", String(status))]).increment()
        }
    }

    /// One chat completion finished, for each cartridge that served it.
    func completion(served: [(name: String, version: String)], promptTokens: Int, completionTokens: Int,
                    duration: Duration, firstToken: Duration?, finish: String) {
        for s in served.isEmpty ? [("base", "-")] : served {
            let labels = [("cartridge", s.0), ("version", s.1)]
            registry.makeCounter(descriptor: Self.name("completions", "total", "Chat completions finished."),
                                 labels: labels + [("finish_reason", finish)]).increment()
            registry.makeCounter(descriptor: Self.name("prompt_tokens", "total", "Prompt tokens read."), labels: labels)
                .increment(by: Int64(promptTokens))
            registry.makeCounter(descriptor: Self.name("completion_tokens", "total", "Tokens generated."), labels: labels)
                .increment(by: Int64(completionTokens))
            registry.makeDurationHistogram(descriptor: Self.name("completion_duration", "seconds", "Time from request to last token."),
                                           labels: labels, buckets: Self.latencyBuckets).record(duration)
            if let f = firstToken {
                registry.makeDurationHistogram(descriptor: Self.name("time_to_first_token", "seconds", "Time from request to first token."),
                                               labels: labels, buckets: Self.latencyBuckets).record(f)
            }
        }
    }

    func memory(bytes: Int, count: Int) {
        loadedBytes.set(Double(bytes))
        loadedCartridges.set(Double(count))
    }

    func queue(waiting: Int, running: Int) {
        queueDepth.set(Double(waiting))
        runningSequences.set(Double(running))
    }

    /// One batched decoding step of `batch` sequences.
    func step(batch: Int) { batchSize.record(Double(batch)) }

    /// The exposition text.
    func render() -> [UInt8] { registry.emitToBuffer() }
}
