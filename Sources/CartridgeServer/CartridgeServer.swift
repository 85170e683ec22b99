import CartridgeFormat
import CartridgeModel
import CartridgeRegistry
import CartridgeRuntime
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle

/// `cartridge serve`: an OpenAI-compatible HTTP server for one frozen model and the cartridges of
/// a registry. Every request resolves its cartridge references against the registry when it
/// starts (so a push or an alias move serves the next request, and a running request keeps the
/// versions it resolved), pins those versions in a shared memory pool, and joins the continuous
/// batch of `BatchScheduler`. Routes: `docs/serving.md`.
public final class CartridgeServer: Sendable {
    let runtime: CartridgeRuntime
    let registry: any CartridgeRegistry
    let options: ServerOptions
    let logger: Logger
    let metrics = ServerMetrics()
    let pool: CartridgePool
    let scheduler: BatchScheduler
    let router: AutoRouter
    /// The base model's id in `/v1/models` and in `model`: its file name without `.gguf`.
    public let baseModelID: String
    let started = Int(Date().timeIntervalSince1970)

    /// Throws `ServerOptionsError` when the options are inconsistent.
    public init(runtime: CartridgeRuntime, registry: any CartridgeRegistry, options: ServerOptions,
                logger: Logger = Logger(label: "cartridges.server")) throws {
        let problems = options.problems()
        guard problems.isEmpty else { throw ServerOptionsError(problems: problems) }
        self.runtime = runtime
        self.registry = registry
        self.options = options
        self.logger = logger
        let file = URL(fileURLWithPath: runtime.model.path).lastPathComponent
        baseModelID = file.hasSuffix(".gguf") ? String(file.dropLast(5)) : (file.isEmpty ? runtime.model.config.name : file)
        pool = CartridgePool(runtime: runtime, registry: registry, budget: options.memoryBudget, logger: logger)
        let metrics = self.metrics
        scheduler = BatchScheduler(runtime: runtime, maxBatch: options.maxBatch, maxQueue: options.maxQueue,
                                   observer: { metrics.queue(waiting: $0, running: $1) }, onStep: { metrics.step(batch: $0) })
        router = AutoRouter(runtime: runtime, registry: registry)
    }

    /// Serves until `shutdown()` (or, with `handleSignals`, SIGINT or SIGTERM); requests in flight
    /// finish first. `onListening` receives the bound port once the server accepts connections.
    public func run(handleSignals: Bool = false, onListening: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        scheduler.start()
        defer { scheduler.shutdown() }
        let app = Application(router: makeRouter(),
                              configuration: .init(address: .hostname(options.host, port: options.port), serverName: "cartridges"),
                              onServerRunning: { await onListening($0.localAddress?.port ?? 0) },
                              logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: handleSignals ? [.sigterm, .sigint] : [],
                                                      logger: logger))
        serviceGroup.withLockedValue { $0 = group }
        try await group.run()
    }

    /// Stops accepting connections and ends `run()` once the requests in flight are answered.
    public func shutdown() async {
        await serviceGroup.withLockedValue { $0 }?.triggerGracefulShutdown()
    }

    private let serviceGroup = NIOLockedValueBox<ServiceGroup?>(nil)

    func makeRouter() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: ErrorMiddleware(metrics: metrics))
        router.add(middleware: AuthMiddleware(token: options.token, adminToken: options.adminToken))
        router.get("/health") { _, _ in self.health() }
        router.get("/metrics") { _, _ in self.metricsResponse() }
        router.get("/v1/models") { _, _ in try self.models() }
        router.post("/v1/chat/completions") { request, _ in try await self.chat(request) }
        router.get("/v1/cartridges") { _, _ in try self.listCartridges() }
        router.get("/v1/cartridges/:name") { _, context in try self.showCartridge(try context.parameters.require("name")) }
        router.post("/v1/cartridges/:name/versions") { request, context in
            try await self.push(request, name: try context.parameters.require("name"))
        }
        router.delete("/v1/cartridges/:name/versions/:version") { _, context in
            try self.removeVersion(try context.parameters.require("name"), try context.parameters.require("version"))
        }
        router.put("/v1/cartridges/:name/aliases/:alias") { request, context in
            try await self.setAlias(request, name: try context.parameters.require("name"), alias: try context.parameters.require("alias"))
        }
        router.post("/v1/cartridges/:name/aliases/:alias/rollback") { _, context in
            try self.rollback(name: try context.parameters.require("name"), alias: try context.parameters.require("alias"))
        }
        return router
    }

    // MARK: - Plain routes

    func health() -> Response {
        let (bytes, count) = pool.usage
        metrics.memory(bytes: bytes, count: count)
        return JSONBody.response(["status": "ok", "model": baseModelID, "loaded_cartridges": count, "loaded_bytes": bytes])
    }

    func metricsResponse() -> Response {
        let (bytes, count) = pool.usage
        metrics.memory(bytes: bytes, count: count)
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: metrics.render())))
    }

    func models() throws -> Response {
        var data: [[String: Any]] = [["id": baseModelID, "object": "model", "created": started, "owned_by": "cartridges", "parent": NSNull()]]
        for name in try registryCall({ try registry.names() }) {
            let newest = try registryCall { try registry.versions(of: name) }.last
            data.append(["id": name, "object": "model", "created": Int(newest?.createdAt.timeIntervalSince1970 ?? 0),
                         "owned_by": "cartridges", "parent": baseModelID])
        }
        return JSONBody.response(["object": "list", "data": data])
    }

    // MARK: - Chat completions

    func chat(_ request: Request) async throws -> Response {
        let body = try await collect(request, limit: options.maxRequestBytes)
        let chat = try ChatRequest.parse(body)
        let versions = try resolve(chat)
        let loaded: [LoadedCartridge]
        do { loaded = try pool.acquire(versions) } catch { throw Self.apiError(error) }
        let served = versions.map { (name: $0.name, version: String($0.version)) }
        let ids = runtime.promptIDs(chat.messages, withCartridges: !versions.isEmpty)
        let context = runtime.model.config.contextLength
        let prefix = loaded.reduce(0) { $0 + $1.length }
        let room = context - prefix - ids.count
        let maxTokens = chat.maxTokens ?? min(options.defaultMaxTokens, room)
        guard room >= 1 && maxTokens <= room else {
            pool.release(versions)
            throw APIError.invalid("this model's context is \(context) tokens, but the cartridges (\(prefix)), the messages (\(ids.count)) and max_tokens (\(max(maxTokens, 1))) need \(prefix + ids.count + max(maxTokens, 1)); shorten the messages or lower max_tokens",
                                   param: "messages", code: "context_length_exceeded")
        }
        let sampling = SamplingParameters(temperature: chat.temperature, topP: chat.topP, seed: chat.seed ?? UInt64.random(in: 0...UInt64.max))
        let (pool, metrics) = (self.pool, self.metrics)
        let job = GenerationJob(promptIDs: ids, cartridges: loaded, maxTokens: maxTokens, sampling: sampling, stops: chat.stop,
                                tokenizer: runtime.model.tokenizer) { outcome in
            pool.release(versions)
            metrics.completion(served: served, promptTokens: outcome.promptTokens, completionTokens: outcome.completionTokens,
                               duration: outcome.duration, firstToken: outcome.firstToken,
                               finish: outcome.reason?.rawValue ?? "error")
        }
        do {
            try scheduler.submit(job)
        } catch BatchScheduler.SubmitError.shuttingDown {
            pool.release(versions)
            throw APIError(status: .serviceUnavailable, message: "the server is shutting down", type: "server_error", code: "shutting_down")
        } catch {
            pool.release(versions)
            throw APIError(status: .serviceUnavailable, message: "the server is at capacity (\(options.maxQueue) requests waiting); retry later",
                           type: "server_error", code: "queue_full")
        }
        var headers = HTTPFields()
        headers[HTTPField.Name("X-Cartridges")!] = versions.isEmpty ? "none" : versions.map { "\($0.name)@\($0.version)" }.joined(separator: ",")
        let reply = Reply(id: "chatcmpl-\(UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased())",
                          created: Int(Date().timeIntervalSince1970), model: chat.model,
                          cartridges: versions.map { ["name": $0.name, "version": $0.version, "sha256": $0.sha256] })
        return chat.stream ? stream(job, reply: reply, includeUsage: chat.includeUsage, headers: headers)
                           : try await complete(job, reply: reply, headers: headers)
    }

    /// What every response of one completion shares.
    struct Reply: @unchecked Sendable {
        let id: String
        let created: Int
        let model: String
        let cartridges: [[String: Any]]

        func object(_ kind: String, choices: [[String: Any]], usage: [String: Int]? = nil) -> [String: Any] {
            var o: [String: Any] = ["id": id, "object": kind, "created": created, "model": model, "choices": choices,
                                    "cartridges": cartridges]
            if let usage { o["usage"] = usage }
            return o
        }

        static func usage(_ prompt: Int, _ completion: Int) -> [String: Int] {
            ["prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion]
        }

        /// One server-sent event: `data: {json}` and a blank line.
        static func event(_ object: Any) -> ByteBuffer {
            ByteBuffer(bytes: Array("data: ".utf8) + JSONBody.encode(object) + Array("\n\n".utf8))
        }

        /// A `chat.completion.chunk` event with one choice.
        func chunk(_ delta: [String: Any], finish: String? = nil) -> ByteBuffer {
            Self.event(object("chat.completion.chunk", choices: [["index": 0, "delta": delta, "finish_reason": finish as Any? ?? NSNull(),
                                                                   "logprobs": NSNull()]]))
        }
    }

    /// The whole answer as one `chat.completion`; the generation stops if the request is cancelled.
    private func complete(_ job: GenerationJob, reply: Reply, headers: HTTPFields) async throws -> Response {
        var text = ""
        var end: (FinishReason, Int, Int)?
        var failure: String?
        await withTaskCancellationHandler {
            for await event in job.events {
                switch event {
                case let .text(piece): text += piece
                case let .finished(reason, p, c): end = (reason, p, c)
                case let .failed(message): failure = message
                }
            }
        } onCancel: { job.cancel() }
        guard let (reason, p, c) = end else { throw APIError.internalError("generation failed: \(failure ?? "no result")") }
        let choice: [String: Any] = ["index": 0, "message": ["role": "assistant", "content": text], "finish_reason": reason.rawValue,
                                     "logprobs": NSNull()]
        return JSONBody.response(reply.object("chat.completion", choices: [choice], usage: Reply.usage(p, c)), headers: headers)
    }

    /// Server-sent events: a role chunk, a chunk per piece of text, a last chunk with the finish
    /// reason (and usage when asked), then `[DONE]`. A failure after the start is sent as an
    /// error event; a client that goes away cancels the generation.
    private func stream(_ job: GenerationJob, reply: Reply, includeUsage: Bool, headers extra: HTTPFields) -> Response {
        var headers = extra
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        let body = ResponseBody { writer in
            do {
                try await writer.write(reply.chunk(["role": "assistant", "content": ""]))
                for await e in job.events {
                    switch e {
                    case let .text(piece): try await writer.write(reply.chunk(["content": piece]))
                    case let .finished(reason, p, c):
                        guard reason != .cancelled else { break }
                        try await writer.write(reply.chunk([:], finish: reason.rawValue))
                        if includeUsage { try await writer.write(Reply.event(reply.object("chat.completion.chunk", choices: [], usage: Reply.usage(p, c)))) }
                    case let .failed(message):
                        try await writer.write(Reply.event(APIError.internalError("generation failed: \(message)").body))
                    }
                }
                try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                try await writer.finish(nil)
            } catch {
                job.cancel()
                throw error
            }
        }
        return Response(status: .ok, headers: headers, body: body)
    }

    /// The versions a request names: `model` when it is a cartridge reference, then `cartridges`
    /// (a list composed in order, or `auto`: retrieval on the last user message).
    func resolve(_ chat: ChatRequest) throws -> [CartridgeVersion] {
        var refs: [(text: String, param: String)] = []
        if chat.model != baseModelID { refs.append((chat.model, "model")) }
        if case let .list(list) = chat.cartridges { refs += list.map { ($0, "cartridges") } }
        var versions = try refs.map { text, param -> CartridgeVersion in
            let reference: CartridgeReference
            do { reference = try CartridgeReference(parsing: text) } catch {
                if param == "model" {
                    throw APIError.notFound("the model '\(text)' does not exist: use \(baseModelID) or a cartridge name (GET /v1/models)",
                                            param: "model", code: "model_not_found")
                }
                throw APIError.invalid("\(error)", param: param)
            }
            do { return try registry.resolve(reference, stickyKey: chat.user) } catch let e as RegistryError {
                throw APIError.notFound("\(e)", param: param, code: param == "model" ? "model_not_found" : "cartridge_not_found")
            }
        }
        if case let .auto(top) = chat.cartridges {
            guard let question = chat.messages.last(where: { $0.role == .user })?.content else {
                throw APIError.invalid("cartridges \"auto\" needs a user message to search with", param: "cartridges")
            }
            do {
                versions += try router.route(question, top: top).filter { v in !versions.contains { $0.sha256 == v.sha256 } }
            } catch let e as RuntimeError {
                throw APIError(status: .serviceUnavailable, message: "\(e)", type: "server_error", code: "retrieval_unavailable")
            }
        }
        return versions
    }

    // MARK: - Admin routes

    func listCartridges() throws -> Response {
        let all = try registryCall { try registry.names().map { ($0, try registry.versions(of: $0), try registry.aliases(of: $0)) } }
        return JSONBody.response(["object": "list", "data": all.map { RegistryJSON.cartridge($0.0, versions: $0.1, aliases: $0.2) }])
    }

    func showCartridge(_ name: String) throws -> Response {
        try registryCall { try RegistryName.validate(name) }
        let (versions, aliases) = try registryCall { (try registry.versions(of: name), try registry.aliases(of: name)) }
        return JSONBody.response(RegistryJSON.cartridge(name, versions: versions, aliases: aliases))
    }

    func push(_ request: Request, name: String) async throws -> Response {
        try registryCall { try RegistryName.validate(name) }
        let bytes = try await collect(request, limit: options.maxUploadBytes)
        do {
            _ = try CartFile.decodeSummary(bytes, path: "the uploaded cartridge", expectedModel: runtime.identity)
        } catch let CartError.wrongModel(cartridge, expected) {
            throw APIError.conflict("this cartridge was made for \(cartridge.name) (fingerprint \(cartridge.fingerprint.prefix(16))), but this server runs \(expected.name) (fingerprint \(expected.fingerprint.prefix(16)))",
                                    code: "model_mismatch")
        } catch {
            throw APIError.invalid("not a valid cartridge: \(error)", code: "invalid_cartridge")
        }
        let v = try registryCall { try registry.push(name: name, bytes: bytes) }
        logger.info("pushed \(v.name)@\(v.version) \(v.sha256.prefix(12))")
        return JSONBody.response(["name": v.name, "version": v.version, "sha256": v.sha256], status: .created)
    }

    func removeVersion(_ name: String, _ versionText: String) throws -> Response {
        guard let version = Int(versionText), version >= 1 else { throw APIError.invalid("version must be a positive integer", param: "version") }
        try registryCall { try RegistryName.validate(name); try registry.remove(name: name, version: version) }
        return JSONBody.response(["name": name, "version": version, "deleted": true])
    }

    func setAlias(_ request: Request, name: String, alias: String) async throws -> Response {
        try registryCall { try RegistryName.validate(name); try RegistryName.validate(alias, what: "alias") }
        let body = try await collect(request, limit: options.maxRequestBytes)
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(body)), case let .object(o) = value else {
            throw APIError.invalid("the body must be a JSON object {\"version\": N} or {\"split\": [{\"version\": N, \"weight\": W}, ...]}", code: "invalid_json")
        }
        let target: AliasTarget
        if let v = try Fields(o).int("version") {
            guard o["split"] == nil else { throw APIError.invalid("give either version or split, not both", param: "split") }
            target = .version(v)
        } else if case let .array(items)? = o["split"] {
            target = .split(try items.enumerated().map { i, item in
                guard case let .object(share) = item, let v = try Fields(share, prefix: "split[\(i)].").int("version"),
                      let w = try Fields(share, prefix: "split[\(i)].").int("weight") else {
                    throw APIError.invalid("split[\(i)] must be {\"version\": N, \"weight\": W}", param: "split[\(i)]")
                }
                return AliasTarget.SplitShare(version: v, weight: w)
            })
        } else {
            throw APIError.invalid("give {\"version\": N} or {\"split\": [{\"version\": N, \"weight\": W}, ...]}", param: "version")
        }
        try registryCall { try registry.setAlias(alias, of: name, to: target) }
        logger.info("alias \(name):\(alias) -> \(target)")
        return JSONBody.response(["name": name, "alias": alias, "target": RegistryJSON.target(target)])
    }

    func rollback(name: String, alias: String) throws -> Response {
        let target = try registryCall { () throws -> AliasTarget in
            try RegistryName.validate(name)
            try RegistryName.validate(alias, what: "alias")
            return try registry.rollback(alias: alias, of: name)
        }
        logger.info("rolled back \(name):\(alias) -> \(target)")
        return JSONBody.response(["name": name, "alias": alias, "target": RegistryJSON.target(target)])
    }

    // MARK: - Helpers

    /// The body, refused with 413 beyond `limit` bytes.
    private func collect(_ request: Request, limit: Int) async throws -> [UInt8] {
        do {
            let buffer = try await request.body.collect(upTo: limit)
            return Array(buffer.readableBytesView)
        } catch is NIOTooManyBytesError {
            throw APIError.tooLarge(limit: limit)
        } catch let e as HTTPError where e.status == .contentTooLarge {
            throw APIError.tooLarge(limit: limit)
        }
    }

    /// Runs a registry call, turning its errors into API errors.
    private func registryCall<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch { throw Self.apiError(error) }
    }

    static func apiError(_ error: Error) -> APIError {
        switch error {
        case let e as APIError: return e
        case let e as RegistryError:
            switch e {
            case .invalidName, .invalidReference, .invalidSplit, .invalidCartridge: return .invalid(e.description)
            case .unknownName, .unknownVersion, .unknownAlias: return .notFound(e.description)
            case .versionInUse: return .conflict(e.description, code: "version_in_use")
            case .noEarlierTarget: return .conflict(e.description, code: "nothing_to_roll_back")
            case .storage: return .internalError(e.description)
            }
        case let e as CartError:
            if case .wrongModel = e { return .conflict("a registry version was made for another model: \(e)", code: "model_mismatch") }
            return .internalError("a registry version cannot be read: \(e)")
        default: return .internalError("\(error)")
        }
    }
}

/// Options that cannot run, each message naming its option.
public struct ServerOptionsError: Error, CustomStringConvertible {
    public let problems: [String]
    public var description: String { problems.joined(separator: "; ") }
}
