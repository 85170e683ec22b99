import AsyncHTTPClient
import CartridgeModel
import CartridgeRegistry
import CartridgeRuntime
@testable import CartridgeServer
import Foundation
import XCTest

/// `/v1/models` and `/v1/chat/completions` over real HTTP: answers equal the runtime's own,
/// with no cartridge, one, several composed and `auto`; streams equal whole answers.
final class ChatCompletionTests: XCTestCase {
    /// The runtime's greedy answer with the registry's current versions of `names` in front.
    private func expected(_ server: TestServer, _ question: String, names: [String], maxTokens: Int = 12) throws -> String {
        let rt = try ServerTestSupport.runtime()
        let loaded = try names.map { try rt.load(server.registry.file(of: try server.registry.resolve(CartridgeReference(name: $0), stickyKey: nil))) }
        return try rt.answer(question, with: loaded, maxTokens: maxTokens).text
    }

    func testModelsListsTheBaseModelAndEveryCartridgeInOpenAIsShape() async throws {
        let s = try await TestServer.start()
        defer { Task { await s.stop() } }
        let r = try await s.send(.GET, "/v1/models")
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.json["object"] as? String, "list")
        let data = try XCTUnwrap(r.json["data"] as? [[String: Any]])
        XCTAssertEqual(data.map { $0["id"] as? String }, [s.server.baseModelID, "baking", "chess", "volcanoes"])
        XCTAssertEqual(s.server.baseModelID, "SmolLM2-135M-Instruct.Q4_1")
        for m in data {
            XCTAssertEqual(m["object"] as? String, "model")
            XCTAssertNotNil(m["created"] as? Int)
            XCTAssertEqual(m["owned_by"] as? String, "cartridges")
        }
        XCTAssertEqual(data[1]["parent"] as? String, s.server.baseModelID)
        let health = try await s.send(.GET, "/health")
        XCTAssertEqual(health.json["status"] as? String, "ok")
    }

    func testCompletionsEqualTheRuntimesAnswersWithNoneOneAndComposedCartridges() async throws {
        let s = try await TestServer.start()
        defer { Task { await s.stop() } }
        let q = "Which volcano in Sicily erupts almost every year?"

        let plain = try await s.chat(q)
        XCTAssertEqual(plain.status, 200, plain.text)
        XCTAssertEqual(plain.content, try expected(s, q, names: []))
        XCTAssertEqual(plain.headers.first(name: "X-Cartridges"), "none")
        XCTAssertEqual(plain.json["object"] as? String, "chat.completion")
        let usage = try XCTUnwrap(plain.json["usage"] as? [String: Int])
        let rt = try ServerTestSupport.runtime()
        XCTAssertEqual(usage["prompt_tokens"], rt.promptIDs(q, withCartridges: false).count)
        XCTAssertEqual(usage["completion_tokens"], 12)
        XCTAssertEqual(usage["total_tokens"], usage["prompt_tokens"]! + 12)
        XCTAssertEqual((plain.json["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String, "length")

        let one = try await s.chat(q, model: "volcanoes")
        XCTAssertEqual(one.status, 200, one.text)
        XCTAssertEqual(one.content, try expected(s, q, names: ["volcanoes"]))
        XCTAssertEqual(one.headers.first(name: "X-Cartridges"), "volcanoes@1")
        let served = try XCTUnwrap(one.json["cartridges"] as? [[String: Any]])
        XCTAssertEqual(served.first?["name"] as? String, "volcanoes")
        XCTAssertEqual(served.first?["version"] as? Int, 1)
        XCTAssertEqual(served.first?["sha256"] as? String, try s.registry.versions(of: "volcanoes")[0].sha256)
        XCTAssertNotEqual(one.content, plain.content, "the cartridge changes the answer")

        let composed = try await s.chat(q, cartridges: ["volcanoes", "chess@1"])
        XCTAssertEqual(composed.status, 200, composed.text)
        XCTAssertEqual(composed.content, try expected(s, q, names: ["volcanoes", "chess"]))
        XCTAssertEqual(composed.headers.first(name: "X-Cartridges"), "volcanoes@1,chess@1")

        // model names a cartridge and cartridges adds more: the model's comes first
        let both = try await s.chat(q, model: "volcanoes", cartridges: ["chess"])
        XCTAssertEqual(both.content, composed.content)
    }

    func testAutoPicksTheCartridgeAboutTheQuestion() async throws {
        let s = try await TestServer.start()
        defer { Task { await s.stop() } }
        for (q, name) in [("How often does Mount Etna erupt?", "volcanoes"), ("How do I feed a sourdough starter?", "baking"),
                          ("What is a pawn promoted to on the last rank?", "chess")] {
            let r = try await s.chat(q, cartridges: "auto")
            XCTAssertEqual(r.status, 200, r.text)
            XCTAssertEqual(r.headers.first(name: "X-Cartridges"), "\(name)@1", q)
            XCTAssertEqual(r.content, try expected(s, q, names: [name]))
        }
        let two = try await s.chat("How often does Mount Etna erupt?", cartridges: "auto", extra: ["cartridges_top": 2])
        XCTAssertEqual(two.headers.first(name: "X-Cartridges")?.split(separator: ",").count, 2)
    }

    func testAStreamSendsTheSameAnswerChunkByChunkThenDone() async throws {
        let s = try await TestServer.start()
        defer { Task { await s.stop() } }
        let q = "What does an eruption throw out?"
        let whole = try await s.chat(q, model: "volcanoes", maxTokens: 16)
        let (status, headers, events) = try await s.stream(["model": "volcanoes", "messages": [["role": "user", "content": q]],
                                                            "max_tokens": 16, "temperature": 0, "stream": true,
                                                            "stream_options": ["include_usage": true]])
        XCTAssertEqual(status, 200)
        XCTAssertEqual(headers.first(name: "Content-Type"), "text/event-stream")
        XCTAssertEqual(headers.first(name: "X-Cartridges"), "volcanoes@1")
        XCTAssertEqual(events.last, "[DONE]")
        let chunks = events.dropLast().map(jsonObject)
        XCTAssertTrue(chunks.allSatisfy { $0["object"] as? String == "chat.completion.chunk" })
        XCTAssertEqual(Set(chunks.compactMap { $0["id"] as? String }).count, 1, "one id for the whole stream")
        let deltas = chunks.compactMap { ($0["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any] }
        XCTAssertEqual(deltas.first?["role"] as? String, "assistant")
        XCTAssertGreaterThan(deltas.count, 3, "the answer arrives in pieces")
        XCTAssertEqual(deltas.compactMap { $0["content"] as? String }.joined(), whole.content)
        let finishes = chunks.compactMap { ($0["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String }
        XCTAssertEqual(finishes, ["length"])
        let usage = try XCTUnwrap(chunks.last?["usage"] as? [String: Int])
        XCTAssertEqual(usage["completion_tokens"], 16)
    }

    func testAStopSequenceCutsTheAnswerBeforeIt() async throws {
        let s = try await TestServer.start()
        defer { Task { await s.stop() } }
        let q = "What does an eruption throw out?"
        let first = try await s.chat(q, model: "volcanoes", maxTokens: 24)
        let whole = try XCTUnwrap(first.content)
        let words = whole.split(separator: " ")
        XCTAssertGreaterThan(words.count, 4, whole)
        let stop = String(words[3])
        let cut = try await s.chat(q, model: "volcanoes", maxTokens: 24, extra: ["stop": [stop]])
        XCTAssertEqual(cut.content, String(whole[..<whole.range(of: stop)!.lowerBound]))
        XCTAssertEqual((cut.json["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String, "stop")
        // streamed, the held-back text never leaks past the stop
        let (_, _, events) = try await s.stream(["model": "volcanoes", "messages": [["role": "user", "content": q]], "max_tokens": 24,
                                                 "temperature": 0, "stream": true, "stop": stop])
        let text = events.dropLast().map(jsonObject).compactMap { (($0["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any])?["content"] as? String }.joined()
        XCTAssertEqual(text, cut.content)
    }

    func testConcurrentRequestsWithDifferentCartridgesGiveExactlyTheirAnswersAlone() async throws {
        let s = try await TestServer.start()
        defer { Task { await s.stop() } }
        let cases = [("Which volcano in Sicily erupts almost every year?", "volcanoes"), ("How do I feed a sourdough starter?", "baking"),
                     ("What is a pawn promoted to?", "chess"), ("Tell me about Etna.", "")]
        var alone: [String] = []
        for (q, name) in cases {
            let r = try await s.chat(q, model: name.isEmpty ? nil : name, maxTokens: 20)
            alone.append(try XCTUnwrap(r.content))
        }
        let together = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
            for (i, (q, name)) in cases.enumerated() {
                group.addTask { (i, try await s.chat(q, model: name.isEmpty ? nil : name, maxTokens: 20).content) }
            }
            var out = [String?](repeating: nil, count: cases.count)
            for try await (i, text) in group { out[i] = text }
            return out
        }
        XCTAssertEqual(together, alone)
        // and they were decoded together: some steps ran more than one sequence
        let metrics = try await s.send(.GET, "/metrics").text
        let single = try XCTUnwrap(Self.value(metrics, "cartridges_decode_batch_size_bucket{le=\"1.0\"}"))
        let all = try XCTUnwrap(Self.value(metrics, "cartridges_decode_batch_size_count"))
        XCTAssertLessThan(single, all, metrics)
    }

    /// The value of one exposition line.
    static func value(_ metrics: String, _ prefix: String) -> Double? {
        metrics.split(separator: "\n").first { $0.hasPrefix(prefix + " ") }.flatMap { Double($0.split(separator: " ").last!) }
    }
}
