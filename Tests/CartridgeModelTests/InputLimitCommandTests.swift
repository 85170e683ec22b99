import CartridgeTestSupport
import Foundation
import XCTest

/// Input a user can type that exceeds a limit: each command exits with status 1 (not a signal)
/// and a message that names the value and the limit (or the file and line).
final class InputLimitCommandTests: XCTestCase {
    struct Run { var status: Int32; var signaled: Bool; var stderr: String }

    func run(_ args: [String]) throws -> Run { try run("cartridge", args) }

    func run(_ executable: String, _ args: [String]) throws -> Run {
        let binary = try TestResources.executable(executable)
        _ = try TestResources.model()  // skips or fails like the other model tests when the model is missing
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        let err = Pipe()
        p.standardOutput = FileHandle.nullDevice
        p.standardError = err
        try p.run()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Run(status: p.terminationStatus, signaled: p.terminationReason == .uncaughtSignal, stderr: String(decoding: e, as: UTF8.self))
    }

    func assertFails(_ r: Run, naming parts: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(r.signaled, "killed by signal \(r.status): \(r.stderr.suffix(400))", file: file, line: line)
        XCTAssertEqual(r.status, 1, r.stderr, file: file, line: line)
        for p in parts { XCTAssertTrue(r.stderr.contains(p), "stderr lacks \(p): \(r.stderr)", file: file, line: line) }
    }

    /// A folder with one text of about 12,000 words (more tokens than the 8,192 of the context).
    func bigCorpus() throws -> URL {
        let dir = try TestResources.temporaryDirectory("big-corpus")
        let words = ["river", "stone", "quiet", "garden", "seven", "paper", "cloud", "light"]
        let text = (0..<12_000).map { words[($0 * 7 + $0 / 3) % words.count] }.joined(separator: " ")
        try text.write(to: dir.appendingPathComponent("big.txt"), atomically: true, encoding: .utf8)
        return dir
    }

    var context: Int { (try? TestResources.model().config.contextLength) ?? 8192 }

    func testLogitsWithMoreIdsThanTheContext() throws {
        let ids = Array(repeating: "504", count: 8300).joined(separator: ",")
        assertFails(try run(["logits", "--ids", ids]), naming: ["8300 tokens", "context is \(context)"])
        assertFails(try run(["logits", "--ids", "1,99999999"]), naming: ["99999999", "0..<"])
    }

    func testGenerateWithAPromptLongerThanTheContext() throws {
        let prompt = String(repeating: "stone ", count: 9000)
        assertFails(try run(["generate", "--chat", prompt, "--max-tokens", "4"]), naming: ["context is \(context)", "--max-tokens"])
    }

    func testInitLargerThanTheContext() throws {
        let dir = try bigCorpus()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("x.cart").path
        assertFails(try run(["init", dir.path, "-o", out, "--size", "9000"]), naming: ["9000", "context is \(context)", "--size"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }

    func testCompileLargerThanTheContext() throws {
        let dir = try bigCorpus()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("y.cart").path
        assertFails(try run("cartridge-compile", [dir.path, "-o", out, "--size", "9000"]), naming: ["9000", "context is \(context)"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + ".work"), "work started before the check")
    }

    func testAskAndEvalLongerThanTheContext() throws {
        let dir = try bigCorpus()
        defer { try? FileManager.default.removeItem(at: dir) }
        // a small cartridge of another document
        let small = dir.appendingPathComponent("small")
        try FileManager.default.createDirectory(at: small, withIntermediateDirectories: true)
        try "The lighthouse keeper paints the door blue every spring.".write(to: small.appendingPathComponent("keeper.txt"), atomically: true, encoding: .utf8)
        let cart = dir.appendingPathComponent("keeper.cart").path
        let made = try run(["init", small.path, "-o", cart, "--size", "8"])
        XCTAssertEqual(made.status, 0, made.stderr)

        let question = String(repeating: "stone ", count: 9000)
        assertFails(try run(["ask", "--cartridge", cart, "--max-tokens", "4", question]), naming: ["context of \(context)"])

        // the big document in context is longer than the model's context
        let qa = dir.appendingPathComponent("qa.jsonl")
        try #"{"doc": "big.txt", "question": "Which word comes first?", "answer": "river"}"#.write(to: qa, atomically: true, encoding: .utf8)
        assertFails(try run(["eval", "--qa", qa.path, "--docs", dir.path, "--cartridge", cart]),
                    naming: [qa.path, "line 1", "big.txt", "context is \(context)"])
    }

    func testEvalNamesTheFileAndLineOfABadQALine() throws {
        let dir = try TestResources.temporaryDirectory("bad-qa")
        defer { try? FileManager.default.removeItem(at: dir) }
        let qa = dir.appendingPathComponent("qa.jsonl")
        let good = #"{"doc": "a.txt", "question": "q?", "answer": "a"}"#
        // line 3 (after a blank line) is not JSON; line 4 misses its answer
        try [good, "", #"{"doc": "a.txt", "question": "q?" "answer": "a"}"#].joined(separator: "\n").write(to: qa, atomically: true, encoding: .utf8)
        assertFails(try run(["eval", "--qa", qa.path, "--docs", dir.path, "--cartridge", "none.cart"]), naming: [qa.path, "line 3", "not a JSON object"])
        try [good, "", good, #"{"doc": "a.txt", "question": "q?"}"#].joined(separator: "\n").write(to: qa, atomically: true, encoding: .utf8)
        assertFails(try run(["eval", "--qa", qa.path, "--docs", dir.path, "--cartridge", "none.cart"]), naming: [qa.path, "line 4", "answer"])
    }
}
