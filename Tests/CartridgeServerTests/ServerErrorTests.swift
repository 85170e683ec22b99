import AsyncHTTPClient
import CartridgeFormat
import CartridgeServer
import Foundation
import XCTest

/// Every error is OpenAI's body with the right status, and no request brings the server down.
final class ServerErrorTests: XCTestCase {
    private func assertError(_ r: TestServer.Reply, _ status: Int, code: String? = nil, param: String? = nil,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, status, r.text, file: file, line: line)
        let error = r.json["error"] as? [String: Any]
        XCTAssertNotNil(error?["message"] as? String, "OpenAI's error body: \(r.text)", file: file, line: line)
        XCTAssertNotNil(error?["type"] as? String, file: file, line: line)
        XCTAssertTrue(error?.keys.contains("param") == true && error?.keys.contains("code") == true, r.text, file: file, line: line)
        if let code { XCTAssertEqual(r.errorCode, code, r.text, file: file, line: line) }
        if let param { XCTAssertEqual(error?["param"] as? String, param, r.text, file: file, line: line) }
    }

    func testBadRequestsGet400NamingTheParameter() async throws {
        let s = try await TestServer.start()
        defer { Task { await s.stop() } }
        let base = s.server.baseModelID
        let ok: [String: Any] = ["model": base, "messages": [["role": "user", "content": "hi"]], "max_tokens": 2]
        assertError(try await s.send(.POST, "/v1/chat/completions", body: Array("{\"model\": ".utf8)), 400, code: "invalid_json")
        assertError(try await s.send(.POST, "/v1/chat/completions", body: Array("[1, 2]".utf8)), 400, code: "invalid_json")
        assertError(try await s.send(.POST, "/v1/chat/completions", body: Array((String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)).utf8)), 400)
        for (field, value, param) in [("temperature", "hot" as Any, "temperature"), ("temperature", 3.5, "temperature"), ("top_p", 0, "top_p"),
                                      ("max_tokens", -1, "max_tokens"), ("max_tokens", 2.5, "max_tokens"), ("stream", "yes", "stream"),
                                      ("stop", [1, 2], "stop"), ("n", 2, "n"), ("cartridges", 7, "cartridges"), ("cartridges", ["BAD NAME"], "cartridges"),
                                      ("messages", [], "messages"), ("messages", [["role": "tool", "content": "x"]], "messages[0].role"),
                                      ("messages", [["role": "user", "content": 5]], "messages[0].content"), ("seed", "x", "seed"),
                                      ("cartridges_top", 0, "cartridges_top")] as [(String, Any, String)] {
            var body = ok
            body[field] = value
            assertError(try await s.send(.POST, "/v1/chat/completions", json: body), 400, param: param)
        }
        var noModel = ok
        noModel["model"] = nil
        assertError(try await s.send(.POST, "/v1/chat/completions", json: noModel), 400, param: "model")
        // longer than the context: 8192 tokens
        assertError(try await s.chat("hi", maxTokens: 9000), 400, code: "context_length_exceeded")
        assertError(try await s.chat(String(repeating: "volcano ", count: 9000), maxTokens: 1), 400, code: "context_length_exceeded")
        // still serving
        assertStatus(try await s.chat("hi", maxTokens: 1), 200)
    }

    func testUnknownModelsCartridgesVersionsAliasesAndRoutesGet404() async throws {
        let s = try await TestServer.start()
        defer { Task { await s.stop() } }
        assertError(try await s.chat("hi", model: "gpt-4o"), 404, code: "model_not_found", param: "model")
        assertError(try await s.chat("hi", model: "nosuch"), 404, code: "model_not_found")
        assertError(try await s.chat("hi", cartridges: ["volcanoes@9"]), 404, code: "cartridge_not_found", param: "cartridges")
        assertError(try await s.chat("hi", cartridges: ["volcanoes:canary"]), 404, code: "cartridge_not_found")
        assertError(try await s.send(.GET, "/v1/cartridges/nosuch"), 404)
        assertError(try await s.send(.PUT, "/v1/cartridges/volcanoes/aliases/stable", json: ["version": 5]), 404)
        assertError(try await s.send(.POST, "/v1/cartridges/volcanoes/aliases/nosuch/rollback"), 404)
        assertError(try await s.send(.GET, "/v1/nothing"), 404, code: "unknown_route")
    }

    func testTokensAreRequiredAndTheAdminRoutesNeedTheAdminToken() async throws {
        let s = try await TestServer.start { $0.token = "user-secret"; $0.adminToken = "admin-secret" }
        defer { Task { await s.stop() } }
        assertStatus(try await s.send(.GET, "/health"), 200, "health needs no token")
        assertError(try await s.send(.GET, "/v1/models"), 401, code: "invalid_api_key")
        assertError(try await s.send(.GET, "/v1/models", token: "wrong"), 401)
        assertError(try await s.chat("hi", maxTokens: 1), 401)
        assertError(try await s.send(.GET, "/metrics"), 401)
        assertStatus(try await s.send(.GET, "/v1/models", token: "user-secret"), 200)
        assertStatus(try await s.chat("hi", maxTokens: 1, token: "user-secret"), 200)
        assertError(try await s.send(.GET, "/v1/cartridges", token: "user-secret"), 403, code: "admin_token_required")
        assertError(try await s.send(.GET, "/v1/cartridges"), 401)
        assertStatus(try await s.send(.GET, "/v1/cartridges", token: "admin-secret"), 200)
        assertStatus(try await s.send(.GET, "/v1/models", token: "admin-secret"), 200, "the admin token also serves")
    }

    func testOptionsRefuseANonLoopbackHostWithoutAToken() throws {
        var o = ServerOptions()
        o.host = "0.0.0.0"
        XCTAssertTrue(o.problems().contains { $0.contains("not loopback") })
        o.token = "t"
        XCTAssertEqual(o.problems(), [])
        o.maxBatch = 0
        XCTAssertEqual(o.problems(), ["max-batch 0 is outside 1...256"])
    }

    func testConflictsGet409AndBodiesOverTheLimitGet413() async throws {
        let s = try await TestServer.start { $0.maxUploadBytes = 1 << 20; $0.maxRequestBytes = 8 << 10 }
        defer { Task { await s.stop() } }
        let other = try ServerTestSupport.cartridge("other", text: "Another model's cartridge.",
                                                    identity: ModelIdentity(name: "OtherModel-1B", fingerprint: String(repeating: "ab", count: 32)))
        let r = try await s.send(.POST, "/v1/cartridges/other/versions", body: other)
        assertError(r, 409, code: "model_mismatch")
        let ours = try ServerTestSupport.runtime().identity
        XCTAssertTrue(r.text.contains("OtherModel-1B") && r.text.contains(ours.name) && r.text.contains(ours.fingerprint.prefix(16)),
                      "names both models: \(r.text)")
        assertError(try await s.send(.POST, "/v1/cartridges/junk/versions", body: Array("not a cartridge".utf8)), 400, code: "invalid_cartridge")
        assertStatus(try await s.send(.PUT, "/v1/cartridges/volcanoes/aliases/stable", json: ["version": 1]), 200)
        assertError(try await s.send(.DELETE, "/v1/cartridges/volcanoes/versions/1"), 409, code: "version_in_use")
        assertError(try await s.send(.POST, "/v1/cartridges/big/versions", body: [UInt8](repeating: 7, count: (1 << 20) + 1)), 413)
        assertError(try await s.chat(String(repeating: "a", count: 9 << 10)), 413)
        assertStatus(try await s.chat("hi", maxTokens: 1), 200)
    }

    func testAFullQueueGets503() async throws {
        let s = try await TestServer.start { $0.maxBatch = 1; $0.maxQueue = 0 }
        defer { Task { await s.stop() } }
        // a stream holds the only batch slot; once its first token arrived, one more request is refused
        var refused: TestServer.Reply?
        _ = try await s.stream(["model": s.server.baseModelID, "messages": [["role": "user", "content": "Write a long story."]],
                                "max_tokens": 2000, "temperature": 0, "stream": true]) { event in
            guard event.contains("\"content\":\"") && !event.contains("\"content\":\"\"") else { return true }
            refused = try await s.chat("hi", maxTokens: 1)
            return false
        }
        assertError(try XCTUnwrap(refused), 503, code: "queue_full")
        // the slot frees when the stream's client leaves
        let start = ContinuousClock.now
        var after = try await s.chat("hi", maxTokens: 1)
        while after.status == 503 && ContinuousClock.now - start < .seconds(5) {
            try await Task.sleep(for: .milliseconds(20))
            after = try await s.chat("hi", maxTokens: 1)
        }
        assertStatus(after, 200)
    }

}
