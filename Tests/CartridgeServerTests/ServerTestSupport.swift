import AsyncHTTPClient
import CartridgeCorpus
import CartridgeFormat
import CartridgeModel
import CartridgeRegistry
import CartridgeRuntime
import CartridgeServer
import CartridgeTestSupport
import Foundation
import NIOCore
import NIOHTTP1
import XCTest

/// The real model, three one-paragraph cartridges, a registry and a real server on a loopback port.
enum ServerTestSupport {
    private static let loaded: Result<CartridgeRuntime, Error> = Result { try CartridgeRuntime(model: TestResources.model()) }

    static func runtime() throws -> CartridgeRuntime {
        let rt = try TestResources.require(loaded, "default model")
        _ = try TestResources.require(Result { try rt.embedder() }, "embedder")
        return rt
    }

    static let documents: [(String, String)] = [
        ("volcanoes", "Volcanoes form where magma rises through the crust. When pressure builds, an eruption throws out lava, ash and gas. Mount Etna in Sicily erupts almost every year."),
        ("baking", "Sourdough bread rises thanks to a starter of wild yeast and lactic acid bacteria. Feed the starter flour and water daily. A hot Dutch oven gives a crisp crust."),
        ("chess", "In chess, the Sicilian Defence answers 1.e4 with 1...c5. A pawn that reaches the last rank is promoted, usually to a queen."),
    ]

    /// The `.cart` bytes of an untrained cartridge of `text` (its first `size` tokens).
    static func cartridge(_ name: String, text: String, size: Int = 16, identity: ModelIdentity? = nil) throws -> [UInt8] {
        let rt = try runtime()
        let doc = [DocumentIngest.document(data: Data(text.utf8), path: "\(name).txt")!]
        let c = try CartridgeBuilder.initialize(documents: doc, model: rt.model, identity: identity ?? rt.identity,
                                                embedder: try rt.embedder(), size: size, name: name)
        return try CartFile.encode(c)
    }

    /// A fresh registry holding version 1 of each document's cartridge.
    static func registry() throws -> (SQLiteRegistry, URL) {
        let rt = try runtime()
        let dir = try TestResources.temporaryDirectory("cartridges-serve")
        let registry = try SQLiteRegistry(directory: dir, model: rt.identity)
        for (name, text) in documents { _ = try registry.push(name: name, bytes: try cartridge(name, text: text)) }
        return (registry, dir)
    }
}

/// A server running in a task of the test process.
final class TestServer: @unchecked Sendable {
    let server: CartridgeServer
    let registry: SQLiteRegistry
    let directory: URL
    let base: String
    private let task: Task<Void, Error>

    private init(server: CartridgeServer, registry: SQLiteRegistry, directory: URL, port: Int, task: Task<Void, Error>) {
        self.server = server
        self.registry = registry
        self.directory = directory
        self.base = "http://127.0.0.1:\(port)"
        self.task = task
    }

    static func start(_ configure: (inout ServerOptions) -> Void = { _ in }) async throws -> TestServer {
        let rt = try ServerTestSupport.runtime()
        let (registry, dir) = try ServerTestSupport.registry()
        var options = ServerOptions()
        options.port = 0
        configure(&options)
        let server = try CartridgeServer(runtime: rt, registry: registry, options: options)
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let task = Task { try await server.run { port in continuation.yield(port); continuation.finish() } }
        var it = ports.makeAsyncIterator()
        guard let port = await it.next() else { throw CocoaError(.coderInvalidValue) }
        return TestServer(server: server, registry: registry, directory: dir, port: port, task: task)
    }

    func stop() async {
        await server.shutdown()
        _ = try? await task.value
        try? FileManager.default.removeItem(at: directory)
    }

    struct Reply {
        let status: Int
        let headers: HTTPHeaders
        let body: [UInt8]
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:] }
        var text: String { String(decoding: body, as: UTF8.self) }
        /// `error.code` of an error body.
        var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
        /// The answer of a chat completion.
        var content: String? { ((json["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String }
    }

    func send(_ method: HTTPMethod, _ path: String, json: Any? = nil, body: [UInt8]? = nil, token: String? = nil) async throws -> Reply {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: json)))
        } else if let body {
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(120))
        let bytes = try await response.body.collect(upTo: 64 << 20)
        return Reply(status: Int(response.status.code), headers: response.headers, body: Array(bytes.readableBytesView))
    }

    /// A greedy chat completion.
    func chat(_ question: String, model: String? = nil, cartridges: Any? = nil, maxTokens: Int = 12, extra: [String: Any] = [:],
              token: String? = nil) async throws -> Reply {
        var body: [String: Any] = ["model": model ?? server.baseModelID, "messages": [["role": "user", "content": question]],
                                   "max_tokens": maxTokens, "temperature": 0]
        if let cartridges { body["cartridges"] = cartridges }
        for (k, v) in extra { body[k] = v }
        return try await send(.POST, "/v1/chat/completions", json: body, token: token)
    }

    /// A streamed chat completion, parsed event by event (`data:` payloads in order).
    func stream(_ body: [String: Any], onEvent: (String) async throws -> Bool = { _ in true }) async throws -> (status: Int, headers: HTTPHeaders, events: [String]) {
        var request = HTTPClientRequest(url: base + "/v1/chat/completions")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(120))
        var events: [String] = []
        var pending = ""
        for try await buffer in response.body {
            pending += String(buffer: buffer)
            while let r = pending.range(of: "\n\n") {
                let block = String(pending[..<r.lowerBound])
                pending = String(pending[r.upperBound...])
                guard block.hasPrefix("data: ") else { continue }
                let payload = String(block.dropFirst(6))
                events.append(payload)
                if try await !onEvent(payload) { return (Int(response.status.code), response.headers, events) }
            }
        }
        return (Int(response.status.code), response.headers, events)
    }
}

func jsonObject(_ text: String) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
}

/// The reply has this status (its body shown when not).
func assertStatus(_ r: TestServer.Reply, _ status: Int, _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(r.status, status, "\(message) \(r.text)", file: file, line: line)
}
