import Foundation

/// How `cartridge serve` runs: where it listens, who may call it, and its limits.
public struct ServerOptions: Sendable {
    /// Address to bind. Anything but loopback needs `token`.
    public var host = "127.0.0.1"
    /// Port to bind; 0 lets the system choose (tests).
    public var port = 8080
    /// Bearer token every route but `/health` needs, when set.
    public var token: String?
    /// Bearer token the admin routes need, when set.
    public var adminToken: String?
    /// Bytes of loaded cartridge tensors kept in memory; least recently used ones beyond it are
    /// dropped (never one a request is using).
    public var memoryBudget = 1 << 30
    /// Sequences decoded together in one batched step.
    public var maxBatch = 8
    /// Requests waiting for a batch slot; one more is refused with 503.
    public var maxQueue = 64
    /// Largest body of a chat request.
    public var maxRequestBytes = 4 << 20
    /// Largest body of a cartridge upload.
    public var maxUploadBytes = 1 << 30
    /// `max_tokens` when a request gives none (bounded by what is left of the context).
    public var defaultMaxTokens = 256

    public init() {}

    /// What is wrong with these options, if anything, as messages naming the option.
    public func problems() -> [String] {
        var out: [String] = []
        if !(0...65535).contains(port) { out.append("port \(port) is outside 0...65535") }
        if maxBatch < 1 || maxBatch > 256 { out.append("max-batch \(maxBatch) is outside 1...256") }
        if maxQueue < 0 || maxQueue > 100_000 { out.append("max-queue \(maxQueue) is outside 0...100000") }
        if memoryBudget < 0 { out.append("memory-budget \(memoryBudget) is negative") }
        if maxRequestBytes < 1024 { out.append("max-request-bytes \(maxRequestBytes) is below 1024") }
        if maxUploadBytes < 1024 { out.append("max-upload-bytes \(maxUploadBytes) is below 1024") }
        if defaultMaxTokens < 1 { out.append("default-max-tokens \(defaultMaxTokens) is below 1") }
        if token?.isEmpty == true { out.append("token is empty") }
        if adminToken?.isEmpty == true { out.append("admin-token is empty") }
        if !Self.isLoopback(host) && token == nil {
            out.append("host \(host) is not loopback: set a token so strangers cannot use the server")
        }
        return out
    }

    /// Whether `host` names this machine only.
    public static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}
