import ArgumentParser
import CartridgeKernels
import CartridgeRegistry
import CartridgeRuntime
import CartridgeServer
import Foundation
import Logging

/// `cartridge serve`: the OpenAI-compatible server over a registry (`docs/serving.md`).
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the model and the registry's cartridges over an OpenAI-compatible HTTP API.",
        discussion: "Routes: GET /health, GET /v1/models, POST /v1/chat/completions, GET /metrics, and the admin routes under /v1/cartridges. See docs/serving.md.")
    @OptionGroup var location: RegistryCommand.Location
    @OptionGroup var model: ModelOptions
    @Option(help: "Address to listen on; anything but loopback needs --token.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0: any free port, printed at start).") var port = 8080
    @Option(help: "Bearer token every route but /health needs.") var token: String?
    @Option(help: "Bearer token the admin routes (/v1/cartridges...) need.") var adminToken: String?
    @Option(help: "Bytes of cartridges kept loaded (suffixes K, M, G), least recently used dropped first.") var memoryBudget = "1G"
    @Option(help: "Sequences decoded together in one step.") var maxBatch = 8
    @Option(help: "Requests that may wait for a batch slot before new ones get 503.") var maxQueue = 64
    @Option(help: "Largest chat request body in bytes.") var maxRequestBytes = 4 << 20
    @Option(help: "Largest cartridge upload in bytes.") var maxUploadBytes = 1 << 30
    @Option(help: "max_tokens when a request gives none.") var defaultMaxTokens = 256

    func run() throws {
        var options = ServerOptions()
        options.host = host
        options.port = port
        options.token = token ?? ProcessInfo.processInfo.environment["CARTRIDGES_TOKEN"]
        options.adminToken = adminToken ?? ProcessInfo.processInfo.environment["CARTRIDGES_ADMIN_TOKEN"]
        guard let budget = Self.bytes(memoryBudget) else { throw ValidationError("--memory-budget \(memoryBudget) is not a byte count like 512M or 2G") }
        options.memoryBudget = budget
        options.maxBatch = maxBatch
        options.maxQueue = maxQueue
        options.maxRequestBytes = maxRequestBytes
        options.maxUploadBytes = maxUploadBytes
        options.defaultMaxTokens = defaultMaxTokens
        let problems = options.problems()
        guard problems.isEmpty else { throw ValidationError(problems.map { "--\($0)" }.joined(separator: "; ")) }

        let lm = try model.load()
        let runtime = try registryCall { try CartridgeRuntime(model: lm) }
        let registry = try location.open(model: runtime.identity)
        let server = try registryCall { try CartridgeServer(runtime: runtime, registry: registry, options: options) }
        let logger = Logger(label: "cartridges.serve")
        let host = options.host
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var failure: Error?
        Task {
            do {
                try await server.run(handleSignals: true) { port in
                    logger.info("serving \(server.baseModelID) and the registry's cartridges on http://\(host):\(port)")
                    FileHandle.standardOutput.write(Data("listening on http://\(host):\(port)\n".utf8))
                }
            } catch {
                failure = error
            }
            done.signal()
        }
        done.wait()
        if let failure { throw CLIError("the server stopped: \(failure)") }
    }

    /// `123`, `64K`, `512M`, `2G` (powers of 1024).
    static func bytes(_ text: String) -> Int? {
        let units: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
        if let last = text.uppercased().last, let unit = units[last] {
            return Int(text.dropLast()).flatMap { $0 >= 0 && $0 <= Int.max / unit ? $0 * unit : nil }
        }
        return Int(text).flatMap { $0 >= 0 ? $0 : nil }
    }
}
