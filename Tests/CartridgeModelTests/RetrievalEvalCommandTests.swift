import CartridgeTestSupport
import Foundation
import XCTest

/// `cartridge eval --retrieval-only`: recall and every item's rank, through the runtime's retrieval.
final class RetrievalEvalCommandTests: XCTestCase {
    func testRetrievalOnlyEvalPrintsRecallAndEachItemsRankAndLine() throws {
        let dir = try TestResources.temporaryDirectory("retrieval-eval")
        defer { try? FileManager.default.removeItem(at: dir) }
        let carts = dir.appendingPathComponent("carts")
        try FileManager.default.createDirectory(at: carts, withIntermediateDirectories: true)
        let documents = [
            "volcanoes": "Volcanoes form where magma rises through the crust. Mount Etna in Sicily erupts almost every year.",
            "baking": "Sourdough bread rises thanks to a starter of wild yeast. Feed the starter flour and water daily.",
            "chess": "In chess, a pawn that reaches the last rank is promoted, usually to a queen.",
        ]
        for (name, text) in documents {
            let file = dir.appendingPathComponent("\(name).txt")
            try text.write(to: file, atomically: true, encoding: .utf8)
            let made = try CommandLineTests.run(["init", file.path, "-o", carts.appendingPathComponent("\(name).cart").path, "--size", "8"])
            XCTAssertEqual(made.status, 0, made.stderr)
        }
        // line 2 is blank; line 4 names a document no cartridge was made from
        let qa = dir.appendingPathComponent("qa.jsonl")
        try [#"{"doc": "volcanoes.txt", "question": "Which volcano in Sicily erupts every year?", "answer": "Etna"}"#, "",
             #"{"doc": "chess.txt", "question": "What happens to a pawn on the last rank?", "answer": "It is promoted"}"#,
             #"{"doc": "poetry.txt", "question": "Who wrote the sonnet?", "answer": "Nobody"}"#]
            .joined(separator: "\n").write(to: qa, atomically: true, encoding: .utf8)

        let r = try CommandLineTests.run(["eval", "--qa", qa.path, "--cartridges", carts.path, "--retrieval-only", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let out = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(out["items"] as? Int, 3)
        XCTAssertEqual(out["cartridges"] as? Int, 3)
        XCTAssertEqual(try XCTUnwrap(out["recall_at_1"] as? Double), 2.0 / 3, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(out["recall_at_3"] as? Double), 2.0 / 3, accuracy: 1e-9)
        let items = try XCTUnwrap(out["per_item"] as? [[String: Any]])
        XCTAssertEqual(items.map { $0["line"] as? Int }, [1, 3, 4])
        XCTAssertEqual(items[0]["rank"] as? Int, 1)
        XCTAssertEqual(items[1]["rank"] as? Int, 1)
        XCTAssertTrue(items[2]["rank"] is NSNull, "no cartridge holds poetry.txt")
        let top = try XCTUnwrap(items[0]["top"] as? [[String: Any]])
        XCTAssertEqual(top.count, 3)
        XCTAssertEqual(top.first?["name"] as? String, "volcanoes")

        let text = try CommandLineTests.run(["eval", "--qa", qa.path, "--cartridges", carts.path, "--retrieval-only"])
        XCTAssertEqual(text.status, 0, text.stderr)
        XCTAssertTrue(text.stdout.contains("3 items over 3 cartridges: recall@1 0.667, recall@3 0.667"), text.stdout)

        let refused = try CommandLineTests.run(["eval", "--qa", qa.path, "--cartridge", carts.appendingPathComponent("chess.cart").path, "--retrieval-only"])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.stderr.contains("--retrieval-only"), refused.stderr)
    }
}
