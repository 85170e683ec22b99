import AsyncHTTPClient
import CartridgeRegistry
import CartridgeServer
import Foundation
import XCTest

/// Pushes, alias moves (by HTTP or by another process' registry handle), splits, rollback,
/// memory eviction, cancellation and metrics, on a running server.
final class HotReloadTests: XCTestCase {
    func testAPushAndAnAliasMoveServeTheNextRequestWithoutARestart() async throws {
        let s = try await TestServer.start()
        defer { Task { await s.stop() } }
        let v2 = try ServerTestSupport.cartridge("volcanoes", text: "Kilauea in Hawaii has erupted for decades. Its lava lake glows at night.")
        let pushed = try await s.send(.POST, "/v1/cartridges/volcanoes/versions", body: v2)
        XCTAssertEqual(pushed.status, 201, pushed.text)
        XCTAssertEqual(pushed.json["version"] as? Int, 2)
        XCTAssertEqual((pushed.json["sha256"] as? String)?.count, 64)
        // NAME without a stable alias: the newest version
        let reply1 = try await s.chat("Tell me about volcanoes.", model: "volcanoes")
        XCTAssertEqual(reply1.headers.first(name: "X-Cartridges"), "volcanoes@2")
        let moved = try await s.send(.PUT, "/v1/cartridges/volcanoes/aliases/stable", json: ["version": 1])
        XCTAssertEqual(moved.status, 200, moved.text)
        let reply2 = try await s.chat("Tell me about volcanoes.", model: "volcanoes")
        XCTAssertEqual(reply2.headers.first(name: "X-Cartridges"), "volcanoes@1")
        // another process (the CLI) moves the alias on the same registry folder
        let cli = try SQLiteRegistry(directory: s.directory)
        try cli.setAlias("stable", of: "volcanoes", to: .version(2))
        let start = ContinuousClock.now
        var header = ""
        while ContinuousClock.now - start < .seconds(1) {
            header = try await s.chat("Tell me about volcanoes.", model: "volcanoes", maxTokens: 1).headers.first(name: "X-Cartridges") ?? ""
            if header == "volcanoes@2" { break }
        }
        XCTAssertEqual(header, "volcanoes@2", "served within a second of the move")
        // rollback returns the alias where it was
        let back = try await s.send(.POST, "/v1/cartridges/volcanoes/aliases/stable/rollback")
        XCTAssertEqual(back.status, 200, back.text)
        XCTAssertEqual((back.json["target"] as? [String: Any])?["version"] as? Int, 1)
        let reply3 = try await s.chat("Tell me about volcanoes.", model: "volcanoes")
        XCTAssertEqual(reply3.headers.first(name: "X-Cartridges"), "volcanoes@1")
        let reply4 = try await s.chat("x", model: "volcanoes:stable", maxTokens: 1)
        XCTAssertEqual(reply4.headers.first(name: "X-Cartridges"), "volcanoes@1")
        let reply5 = try await s.chat("x", model: "volcanoes@2", maxTokens: 1)
        XCTAssertEqual(reply5.headers.first(name: "X-Cartridges"), "volcanoes@2")
        let listed = try await s.send(.GET, "/v1/cartridges/volcanoes")
        XCTAssertEqual((listed.json["versions"] as? [[String: Any]])?.count, 2)
        XCTAssertEqual((listed.json["aliases"] as? [[String: Any]])?.first?["alias"] as? String, "stable")
    }

    func testAStreamFinishesOnTheVersionItStartedWithWhileAPushMovesTheAlias() async throws {
        let s = try await TestServer.start()
        defer { Task { await s.stop() } }
        let q = "Which volcano in Sicily erupts almost every year?"
        let first = try await s.chat(q, model: "volcanoes", maxTokens: 40)
        let before = try XCTUnwrap(first.content)
        let v2 = try ServerTestSupport.cartridge("volcanoes", text: "Kilauea in Hawaii has erupted for decades. Its lava lake glows at night.")
        var moved = false
        let (_, headers, events) = try await s.stream(["model": "volcanoes", "messages": [["role": "user", "content": q]], "max_tokens": 40,
                                                       "temperature": 0, "stream": true]) { _ in
            if !moved {  // after the first event: push v2 and point stable at it
                moved = true
                let reply6 = try await s.send(.POST, "/v1/cartridges/volcanoes/versions", body: v2)
                XCTAssertEqual(reply6.status, 201)
                let reply7 = try await s.send(.PUT, "/v1/cartridges/volcanoes/aliases/stable", json: ["version": 2])
                XCTAssertEqual(reply7.status, 200)
            }
            return true
        }
        XCTAssertEqual(headers.first(name: "X-Cartridges"), "volcanoes@1")
        let chunks = events.dropLast().map(jsonObject)
        XCTAssertTrue(chunks.allSatisfy { (($0["cartridges"] as? [[String: Any]])?.first?["version"] as? Int) == 1 })
        let text = chunks.compactMap { (($0["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any])?["content"] as? String }.joined()
        XCTAssertEqual(text, before, "the stream finished on version 1")
        let reply8 = try await s.chat(q, model: "volcanoes", maxTokens: 1)
        XCTAssertEqual(reply8.headers.first(name: "X-Cartridges"), "volcanoes@2")
    }

    func testASplitServesVersionsByWeightAndStaysWithAUser() async throws {
        let s = try await TestServer.start()
        defer { Task { await s.stop() } }
        let v2 = try ServerTestSupport.cartridge("volcanoes", text: "Kilauea in Hawaii has erupted for decades.")
        let reply9 = try await s.send(.POST, "/v1/cartridges/volcanoes/versions", body: v2)
        XCTAssertEqual(reply9.status, 201)
        let split = try await s.send(.PUT, "/v1/cartridges/volcanoes/aliases/stable",
                                     json: ["split": [["version": 1, "weight": 75], ["version": 2, "weight": 25]]])
        XCTAssertEqual(split.status, 200, split.text)
        var second = 0
        let n = 200
        for _ in 0..<n {
            let r = try await s.chat("x", model: "volcanoes", maxTokens: 1)
            if r.headers.first(name: "X-Cartridges") == "volcanoes@2" { second += 1 }
        }
        // 25% of 200 is 50 with a standard deviation of 6.1: 4 deviations either side
        XCTAssertTrue((26...74).contains(second), "version 2 served \(second) of \(n)")
        for user in ["ada", "grace", "linus"] {
            var seen = Set<String>()
            for _ in 0..<8 {
                let r = try await s.chat("x", model: "volcanoes", maxTokens: 1, extra: ["user": user])
                seen.insert(r.headers.first(name: "X-Cartridges") ?? "")
            }
            XCTAssertEqual(seen.count, 1, "user \(user) keeps one version")
        }
    }

    func testCartridgesBeyondTheMemoryBudgetAreEvictedLeastRecentlyUsedFirst() async throws {
        // one 16-slot cartridge in f32: 30 layers x 3 KV heads x 16 x 64 x 2 x 4 bytes = 737,280
        let s = try await TestServer.start { $0.memoryBudget = 800_000 }
        defer { Task { await s.stop() } }
        for name in ["volcanoes", "baking", "chess"] { assertStatus(try await s.chat("x", model: name, maxTokens: 1), 200) }
        let health = try await s.send(.GET, "/health")
        XCTAssertEqual(health.json["loaded_cartridges"] as? Int, 1)
        XCTAssertEqual(health.json["loaded_bytes"] as? Int, 737_280)
        // a composition of two needs both at once: both stay while it runs, then one is dropped
        let reply11 = try await s.chat("x", cartridges: ["volcanoes", "baking"], maxTokens: 1)
        XCTAssertEqual(reply11.status, 200)
        let reply12 = try await s.send(.GET, "/health")
        XCTAssertEqual(reply12.json["loaded_cartridges"] as? Int, 1)
    }

    func testAClientThatGoesAwayStopsItsGeneration() async throws {
        let s = try await TestServer.start()
        defer { Task { await s.stop() } }
        _ = try await s.stream(["model": "volcanoes", "messages": [["role": "user", "content": "Write a very long story."]],
                                "max_tokens": 4000, "temperature": 0, "stream": true]) { _ in false }  // leave after the first event
        let start = ContinuousClock.now
        var metrics = ""
        while ContinuousClock.now - start < .seconds(5) {
            metrics = try await s.send(.GET, "/metrics").text
            if metrics.contains("finish_reason=\"cancelled\"") { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        XCTAssertTrue(metrics.contains("finish_reason=\"cancelled\""), "the generation was cancelled:\n\(metrics)")
        XCTAssertTrue(metrics.contains("cartridges_running_sequences 0"), metrics)
    }

    func testMetricsCountRequestsTokensAndLatencyPerCartridgeVersion() async throws {
        let s = try await TestServer.start()
        defer { Task { await s.stop() } }
        _ = try await s.chat("x", model: "chess", maxTokens: 3)
        _ = try await s.chat("x", model: "nosuch", maxTokens: 3)
        let m = try await s.send(.GET, "/metrics")
        XCTAssertEqual(m.status, 200)
        XCTAssertTrue(m.headers.first(name: "Content-Type")?.hasPrefix("text/plain") == true)
        for line in ["cartridges_completions_total{cartridge=\"chess\",version=\"1\",finish_reason=\"length\"} 1",
                     "cartridges_completion_tokens_total{cartridge=\"chess\",version=\"1\"} 3",
                     "cartridges_completion_duration_seconds_count{cartridge=\"chess\",version=\"1\"} 1",
                     "cartridges_http_errors_total{route=\"/v1/chat/completions\",status=\"404\"} 1",
                     "cartridges_loaded_cartridge_bytes 737280", "cartridges_queue_depth 0"] {
            XCTAssertTrue(m.text.contains(line), "missing \(line) in\n\(m.text)")
        }
    }
}
