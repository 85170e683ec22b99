import CartridgeCorpus
import CartridgeEvaluation
import CartridgeFormat
import CartridgeModel
@testable import CartridgeRuntime
import CartridgeTestSupport
import Foundation
import XCTest

/// Cartridges on disk: init, retrieval ranking, lazy loading with an LRU bound, and refusal of
/// cartridges made for another model.
final class LibraryTests: XCTestCase {
    private func buildLibrary(size: Int = 16) throws -> (CartridgeRuntime, URL) {
        let rt = try RuntimeTestSupport.runtime()
        _ = try requireEmbedder(rt)
        let dir = try TestResources.temporaryDirectory()
        for (name, text) in RuntimeTestSupport.documents {
            let doc = [DocumentIngest.document(data: Data(text.utf8), path: name)!]
            let base = (name as NSString).deletingPathExtension
            let c = try CartridgeBuilder.initialize(documents: doc, model: rt.model, identity: rt.identity, embedder: try rt.embedder(), size: size, name: base)
            try CartFile.write(c, to: dir.appendingPathComponent(base + ".cart"))
        }
        return (rt, dir)
    }

    private func requireEmbedder(_ rt: CartridgeRuntime) throws -> Any {
        try TestResources.require(Result { try rt.embedder() }, "embedder")
    }

    func testRetrievalRanksTheDocumentAboutTheQuestionFirst() throws {
        let (rt, dir) = try buildLibrary()
        defer { try? FileManager.default.removeItem(at: dir) }
        let lib = try rt.openLibrary(dir)
        XCTAssertEqual(lib.entries.map(\.name), ["baking", "chess", "volcanoes"])
        for (question, expected) in [("Which volcano in Sicily erupts almost every year?", "volcanoes"),
                                     ("How do I keep a sourdough starter alive?", "baking"),
                                     ("What happens when a pawn reaches the last rank?", "chess")] {
            let found = try rt.retrieve(question, in: lib, k: 3)
            XCTAssertEqual(found.first?.entry.name, expected, question)
            XCTAssertEqual(found.count, 3)
            XCTAssertGreaterThan(found[0].score, found[1].score)
        }
    }

    func testCartridgesWithoutStoredWordsLoadAndAreRankedByTheirVectors() throws {
        let (rt, dir) = try buildLibrary(size: 8)
        defer { try? FileManager.default.removeItem(at: dir) }
        // rewrite every cartridge as one written before passages carried their words
        for name in ["baking", "chess", "volcanoes"] {
            let url = dir.appendingPathComponent(name + ".cart")
            var c = try CartFile.read(from: url)
            XCTAssertTrue(c.metadata.chunks.allSatisfy { $0.terms != nil }, "init stores every passage's words")
            for i in c.metadata.chunks.indices { c.metadata.chunks[i].terms = nil }
            try CartFile.write(c, to: url)
        }
        let lib = try rt.openLibrary(dir)
        let question = "Which volcano in Sicily erupts almost every year?"
        let found = try rt.retrieve(question, in: lib, k: 3)
        XCTAssertEqual(found.first?.entry.name, "volcanoes")
        // the score is the best cosine over the cartridge's passage vectors, as before words were stored
        let q = try rt.embedder().embed(question)
        let summary = try CartFile.readSummary(from: found[0].entry.url)
        let d = summary.metadata.embeddingDimension
        let best = (0..<summary.metadata.chunks.count).map { r in zip(q, summary.retrievalVectors[(r * d)..<((r + 1) * d)]).map(*).reduce(0, +) }.max()!
        XCTAssertEqual(found[0].score, best, accuracy: 1e-5)
    }

    func testLibraryLoadsLazilyAndEvictsLeastRecentlyUsed() throws {
        let (rt, dir) = try buildLibrary(size: 8)
        defer { try? FileManager.default.removeItem(at: dir) }
        let one = 2 * rt.model.config.kvValuesPerToken / 2 * 8 * 4  // bytes of one 8-slot cartridge in f32
        let lib = try rt.openLibrary(dir, memoryBudget: 2 * one)
        XCTAssertEqual(lib.cachedNames, [], "nothing is loaded before use")
        _ = try lib.load(lib.entries[0])
        _ = try lib.load(lib.entries[1])
        _ = try lib.load(lib.entries[0])
        _ = try lib.load(lib.entries[2])
        XCTAssertEqual(lib.cachedNames, ["baking", "volcanoes"])
        XCTAssertLessThanOrEqual(lib.cachedBytes, 2 * one)
    }

    func testACartridgeForAnotherModelIsRefusedNamingBothModels() throws {
        let (rt, dir) = try buildLibrary(size: 8)
        defer { try? FileManager.default.removeItem(at: dir) }
        var c = try CartFile.read(from: dir.appendingPathComponent("chess.cart"))
        c.metadata.model = ModelIdentity(name: "Other Model 7B", fingerprint: String(repeating: "ab", count: 32))
        let foreign = dir.appendingPathComponent("foreign.cart")
        try CartFile.write(c, to: foreign)
        XCTAssertThrowsError(try rt.load(foreign)) { e in
            let text = "\(e)"
            XCTAssertTrue(text.contains("Other Model 7B") && text.contains(rt.identity.name), text)
        }
        XCTAssertThrowsError(try rt.openLibrary(dir))
    }

    /// The cartridge carries its document: the answer it states becomes far more likely.
    func testACartridgeMakesTheAnswerInItsDocumentLikelier() throws {
        let rt = try RuntimeTestSupport.runtime()
        _ = try requireEmbedder(rt)
        let text = "The lighthouse on Skerry Point was built in 1871 by the engineer Anna Lind. The keeper's dog is a grey terrier called Pilot."
        let doc = [DocumentIngest.document(data: Data(text.utf8), path: "v.txt")!]
        let cart = LoadedCartridge(name: "v", cartridge: try CartridgeBuilder.initialize(documents: doc, model: rt.model, identity: rt.identity, embedder: try rt.embedder(), size: 64, name: "v", dtype: .f32))
        let tok = rt.model.tokenizer
        let question = StudentPrompt.ids(question: "What is the keeper's dog called?", tokenizer: tok)
        let answer = tok.encode("The dog is called Pilot.", parseSpecial: false)
        let none = AnswerScorer.meanNLL(model: rt.model.model, context: question, answer: answer)
        let with = AnswerScorer.meanNLL(model: rt.model.model, cache: try rt.makeCache([cart], extraCapacity: question.count + answer.count),
                                        context: question, answer: answer)
        print("answer NLL per token: no context \(none), with the init cartridge \(with)")
        XCTAssertLessThan(with, none - 1, "the cartridge should make the answer much likelier")
    }
}
