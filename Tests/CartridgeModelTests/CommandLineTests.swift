import CartridgeTestSupport
import Foundation
import XCTest

/// The `cartridge` executable as later checks call it (built by `make test` before the tests run).
final class CommandLineTests: XCTestCase {
    struct Run { var status: Int32; var stdout: String; var stderr: String }


    func run(_ args: [String]) throws -> Run { try Self.run(args) }

    static func run(_ args: [String]) throws -> Run {
        let binary = try TestResources.executable("cartridge")
        _ = try TestResources.model()  // skips or fails like the other model tests when the model is missing
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Run(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    func testTokenizePrintsTheReferenceIds() throws {
        let r = try run(["tokenize", "--text", "<|im_start|>user\nHello world<|im_end|>"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let ids = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [Int]
        XCTAssertEqual(ids, try TestResources.model().tokenizer.encode("<|im_start|>user\nHello world<|im_end|>", parseSpecial: true))
        XCTAssertEqual(ids.first, 1)
        let plain = try run(["tokenize", "--text", "<|im_start|>", "--no-special"])
        XCTAssertEqual(try JSONSerialization.jsonObject(with: Data(plain.stdout.utf8)) as? [Int],
                       try TestResources.model().tokenizer.encode("<|im_start|>", parseSpecial: false))
        XCTAssertGreaterThan(try TestResources.model().tokenizer.encode("<|im_start|>", parseSpecial: false).count, 1)
    }

    func testLogitsPrintsTopMeanAndStd() throws {
        let ref = try TestResources.reference("logits.json")
        let prompt = (ref["prompts"] as! [[String: Any]]).first { $0["name"] as? String == "english_prose" }!
        let ids = (prompt["ids"] as! [Int]).map(String.init).joined(separator: ",")
        let r = try run(["logits", "--ids", ids, "--top", "5"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let out = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        let top = out["top"] as! [[Double]]
        let last = prompt["last"] as! [String: Any]
        let refTop = last["top20"] as! [[Double]]
        XCTAssertEqual(top.count, 5)
        for (ours, ref) in zip(top, refTop) {
            XCTAssertEqual(Int(ours[0]), Int(ref[0]))
            XCTAssertEqual(ours[1], ref[1], accuracy: 1e-3)
        }
        XCTAssertEqual(out["mean"] as! Double, last["mean"] as! Double, accuracy: 1e-4)
        XCTAssertEqual(out["std"] as! Double, last["std"] as! Double, accuracy: 1e-4)
    }

    func testGenerateAnswersTheCapitalQuestion() throws {
        let r = try run(["generate", "--chat", "What is the capital of France?", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let out = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(out["ids"] as! [Int], [504, 3575, 282, 4649, 314, 7042, 30, 2])
        XCTAssertEqual(out["text"] as! String, "The capital of France is Paris.")
    }

    func testBadInputGivesAClearErrorAndNonZeroStatus() throws {
        let missing = try run(["generate", "--chat", "hi", "--model", "/nonexistent/model.gguf"])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.stderr.contains("/nonexistent/model.gguf"), missing.stderr)
        let notGGUF = try run(["logits", "--ids", "1,2", "--model", #filePath])
        XCTAssertNotEqual(notGGUF.status, 0)
        XCTAssertTrue(notGGUF.stderr.contains("not a GGUF file"), notGGUF.stderr)
        let badIDs = try run(["logits", "--ids", "1,x"])
        XCTAssertNotEqual(badIDs.status, 0)
        let outOfRange = try run(["logits", "--ids", "1,99999999"])
        XCTAssertNotEqual(outOfRange.status, 0)
        XCTAssertTrue(outOfRange.stderr.contains("99999999"), outOfRange.stderr)
    }
}

/// The cartridge commands as later checks call them: init, ask (given and retrieved), inspect, embed.
final class CartridgeCommandLineTests: XCTestCase {
    func testInitAskInspectAndEmbed() throws {
        let cli = CommandLineTests.self
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cli-\(UUID().uuidString)")
        let docs = dir.appendingPathComponent("docs"), carts = dir.appendingPathComponent("carts")
        try FileManager.default.createDirectory(at: docs, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: carts, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try "The lighthouse on Skerry Point was built in 1871 by the engineer Anna Lind.".write(to: docs.appendingPathComponent("a.txt"), atomically: true, encoding: .utf8)
        let cart = carts.appendingPathComponent("skerry.cart").path

        // the whole document (with its header) is shorter than 32 slots: the cartridge holds all of it
        let made = try cli.run(["init", docs.path, "-o", cart, "--size", "32"])
        XCTAssertEqual(made.status, 0, made.stderr)

        let inspect = try cli.run(["inspect", cart, "--json"])
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        let info = try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as! [String: Any]
        let meta = info["metadata"] as! [String: Any], header = info["header"] as! [String: Any]
        let slots = meta["length"] as! Int
        XCTAssertTrue(made.stderr.contains("\(slots) slots, 1 documents"), made.stderr)
        XCTAssertGreaterThan(slots, 16)
        XCTAssertLessThan(slots, 32)
        XCTAssertEqual(info["verified"] as? Bool, true)
        XCTAssertEqual(meta["name"] as? String, "skerry")
        XCTAssertEqual(meta["dtype"] as? String, "f16")
        XCTAssertEqual(meta["layers"] as? Int, 30)
        XCTAssertEqual(meta["kvHeads"] as? Int, 3)
        XCTAssertEqual(meta["headDim"] as? Int, 64)
        XCTAssertEqual(meta["frozenSlots"] as? Int, 1)
        XCTAssertEqual((meta["sources"] as! [[String: Any]]).map { $0["path"] as? String }, ["a.txt"])
        let fingerprint = (meta["model"] as! [String: Any])["fingerprint"] as! String
        XCTAssertTrue(fingerprint.count == 64 && fingerprint.allSatisfy(\.isHexDigit), "a SHA-256 of the weights: \(fingerprint)")
        XCTAssertEqual(header["fileLength"] as? Int, try FileManager.default.attributesOfItem(atPath: cart)[.size] as? Int)

        // greedy, with the document as the cartridge: the answer states its facts
        let ask = try cli.run(["ask", "--cartridge", cart, "--max-tokens", "16", "When was the lighthouse built?", "--json"])
        XCTAssertEqual(ask.status, 0, ask.stderr)
        let a = try JSONSerialization.jsonObject(with: Data(ask.stdout.utf8)) as! [String: Any]
        XCTAssertTrue((a["answer"] as! String).contains("built in 1871"), a["answer"] as! String)
        XCTAssertEqual(a["prefix_tokens"] as? Int, slots)
        XCTAssertEqual((a["cartridges"] as! [[String: Any]]).map { $0["name"] as? String }, ["skerry"])
        let who = try cli.run(["ask", "--cartridge", cart, "--max-tokens", "16", "Who built the lighthouse?"])
        XCTAssertEqual(who.status, 0, who.stderr)
        XCTAssertTrue(who.stdout.contains("Anna Lind"), who.stdout)

        // the baseline: the same document in the context, no cartridge
        let inContext = try cli.run(["ask", "--context", docs.path, "--max-tokens", "16", "Who built the lighthouse?", "--json"])
        XCTAssertEqual(inContext.status, 0, inContext.stderr)
        let c = try JSONSerialization.jsonObject(with: Data(inContext.stdout.utf8)) as! [String: Any]
        XCTAssertTrue((c["answer"] as! String).contains("Anna Lind"), c["answer"] as! String)
        XCTAssertEqual(c["documents"] as? [String], ["a.txt"])
        let both = try cli.run(["ask", "--context", docs.path, "--cartridge", cart, "Who?"])
        XCTAssertNotEqual(both.status, 0)
        XCTAssertTrue(both.stderr.contains("--context"), both.stderr)

        let retrieved = try cli.run(["ask", "--cartridges", carts.path, "--top", "1", "--max-tokens", "4", "Who built the lighthouse?", "--json"])
        XCTAssertEqual(retrieved.status, 0, retrieved.stderr)
        let r = try JSONSerialization.jsonObject(with: Data(retrieved.stdout.utf8)) as! [String: Any]
        let first = (r["cartridges"] as! [[String: Any]]).first!
        XCTAssertEqual(first["name"] as? String, "skerry")
        // scores are standardized across the library (cosine and BM25 z-scores): the only cartridge scores 0
        XCTAssertEqual(first["score"] as? Double, 0)
        XCTAssertEqual(r["prefix_tokens"] as? Int, slots)

        var broken = try Data(contentsOf: URL(fileURLWithPath: cart))
        broken[broken.count / 2] ^= 0xFF
        let bad = dir.appendingPathComponent("bad.cart")
        try broken.write(to: bad)
        let failed = try cli.run(["inspect", bad.path])
        XCTAssertNotEqual(failed.status, 0)
        XCTAssertTrue(failed.stderr.lowercased().contains("checksum"), failed.stderr)

        let embed = try cli.run(["embed", "--text", "hello world", "--json"])
        XCTAssertEqual(embed.status, 0, embed.stderr)
        let e = try JSONSerialization.jsonObject(with: Data(embed.stdout.utf8)) as! [String: Any]
        let embedding = e["embedding"] as! [Double]
        XCTAssertEqual(embedding.count, 384)
        XCTAssertEqual(embedding.reduce(0) { $0 + $1 * $1 }, 1, accuracy: 1e-5, "unit length")
        XCTAssertEqual(e["ids"] as? [Int], [101, 7592, 2088, 102], "[CLS] hello world [SEP]")
    }
}
