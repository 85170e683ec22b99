import CartridgeCorpus
import CartridgeFormat
import CartridgeModel
@testable import CartridgeRuntime
import CartridgeTestSupport
import Foundation
import XCTest

final class IngestTests: XCTestCase {
    func testReadsTextRecursivelyInOrderAndSkipsEmptyBinaryAndHiddenFiles() throws {
        let dir = try TestResources.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("sub/deeper"), withIntermediateDirectories: true)
        try "# Title\nSome markdown.".write(to: dir.appendingPathComponent("b.md"), atomically: true, encoding: .utf8)
        try "func f() {}\n".write(to: dir.appendingPathComponent("sub/deeper/code.swift"), atomically: true, encoding: .utf8)
        try "alpha".write(to: dir.appendingPathComponent("a.txt"), atomically: true, encoding: .utf8)
        try Data().write(to: dir.appendingPathComponent("empty.txt"))
        try Data([0x89, 0x50, 0x4E, 0x47, 0, 0, 1, 2]).write(to: dir.appendingPathComponent("image.png"))
        try "secret".write(to: dir.appendingPathComponent(".hidden"), atomically: true, encoding: .utf8)
        try Data([0x63, 0x61, 0x66, 0xC3, 0x28, 0x21]).write(to: dir.appendingPathComponent("latin.txt"))  // invalid UTF-8
        let docs = try DocumentIngest.read(dir)
        XCTAssertEqual(docs.map(\.path), ["a.txt", "b.md", "latin.txt", "sub/deeper/code.swift"])
        XCTAssertEqual(docs[2].text, "caf\u{FFFD}(!")
        XCTAssertEqual(docs[0].sha256, "8ed3f6ad685b959ead7022518e1af76cd816f8e8ec7ccdda1ed4018e8f2223f8")
        XCTAssertEqual(docs[0].bytes, 5)
    }

    func testAnEmptyCorpusIsAClearError() throws {
        let dir = try TestResources.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data().write(to: dir.appendingPathComponent("empty.txt"))
        XCTAssertThrowsError(try DocumentIngest.read(dir)) { e in XCTAssertEqual(e as? IngestError, .emptyCorpus(dir.path)) }
        XCTAssertThrowsError(try DocumentIngest.read(dir.appendingPathComponent("missing")))
    }

    func testPassagesCoverTheTextWithOverlap() {
        let words = (0..<300).map { "w\($0)" }
        let text = words.joined(separator: " ")
        let passages = PassageSplitter.passages(text, words: 120, overlap: 20)
        XCTAssertEqual(passages.count, 3)
        XCTAssertTrue(passages[0].text.hasPrefix("w0 ") && passages[0].text.hasSuffix(" w119"))
        XCTAssertTrue(passages[1].text.hasPrefix("w100 "))
        XCTAssertTrue(passages[2].text.hasSuffix("w299"))
        for c in passages { XCTAssertEqual(String(decoding: Array(text.utf8)[c.start..<c.end], as: UTF8.self), c.text) }
    }

    func testWithoutWordsTheIndexScoresByTheBestPassageVector() {
        var index = ExactIndex(dimension: 2)
        _ = index.add(vectors: [1, 0, 0, 1], words: [nil, nil])   // cartridge 0: two chunks
        _ = index.add(vectors: [0.6, 0.8], words: [nil])          // cartridge 1
        let m = index.search(RetrievalQuery(vector: [0, 1], text: "any words"), k: 2)
        XCTAssertEqual(m.map(\.cartridge), [0, 1])
        XCTAssertEqual(m[0].passage, 1)
        XCTAssertEqual(m[0].score, 1)
        XCTAssertEqual(m[1].score, 0.8, accuracy: 1e-6, "the cosine itself")
        XCTAssertEqual(index.search(RetrievalQuery(vector: [1, 0], words: []), k: 1).first?.cartridge, 0)
    }
}
