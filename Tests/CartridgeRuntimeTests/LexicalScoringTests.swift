@testable import CartridgeFormat
@testable import CartridgeRuntime
import Foundation
import XCTest

/// The words stored per passage and BM25 over them: no model needed.
final class LexicalScoringTests: XCTestCase {
    private func bag(_ text: String) -> PassageTerms { PassageTerms(text: text) }
    private func query(_ text: String) -> [UInt32] { bag(text).ids }

    func testWordsAreLowerCasedStemmedRunsOfLettersAndDigits() {
        XCTAssertEqual(PassageTerms.words("The author's 2 Miquelrius notebooks—café, C99!"),
                       ["the", "author", "s", "2", "miquelrius", "notebook", "café", "c99"])
        let b = bag("Pen pen PEN ink")
        XCTAssertEqual(b.ids, [PassageTerms.id(of: "ink"), PassageTerms.id(of: "pen")].sorted())
        XCTAssertEqual(b.wordCount, 4)
        XCTAssertEqual(b.counts[b.ids.firstIndex(of: PassageTerms.id(of: "pen"))!], 3)
    }

    func testTheStemmerRemovesPluralEndingsOnly() {
        let cases = ["notebooks": "notebook", "companies": "company", "glasses": "glasse", "does": "does", "goes": "goes",
                     "bus": "bus", "boss": "boss", "is": "is", "s": "s", "its": "it", "ies": "ies", "flies": "fly", "trees": "trees", "pen": "pen"]
        for (word, stem) in cases { XCTAssertEqual(PassageTerms.stem(word), stem, word) }
    }

    func testWordIdsAreFNV1aOfTheUTF8Bytes() {
        // published FNV-1a 32-bit test vectors
        XCTAssertEqual(PassageTerms.id(of: ""), 0x811C_9DC5)
        XCTAssertEqual(PassageTerms.id(of: "a"), 0xE40C_292C)
        XCTAssertEqual(PassageTerms.id(of: "foobar"), 0xBF9C_F968)
    }

    func testAnExactTermMatchOutscoresUnrelatedPassages() {
        var index = LexicalIndex()
        index.add([bag("The notebooks I like best are made by Miquelrius in Barcelona."),
                   bag("Startups grow fast when founders talk to their users every week."),
                   bag("The best way to learn to write is to write a great deal.")])
        let s = index.scores(query("Which company makes the notebooks?"))
        XCTAssertGreaterThan(s[0], s[1])
        XCTAssertGreaterThan(s[0], s[2])
        XCTAssertEqual(s[1], 0, "no word in common")
    }

    func testIDFDownWeightsAWordFoundInMostPassages() {
        var index = LexicalIndex()
        // "startup" is in every passage, "cliff" in one
        index.add([bag("startup startup cliff"), bag("startup cliff startup")] +
                  (0..<8).map { bag("startup growth number \($0)") })
        XCTAssertLessThan(LexicalIndex.idf(df: 10, n: 10), LexicalIndex.idf(df: 1, n: 10))
        XCTAssertGreaterThan(LexicalIndex.idf(df: 10, n: 10), 0, "a common word still counts a little")
        let common = index.scores(query("startup")), rare = index.scores(query("cliff"))
        XCTAssertLessThan(common[0], rare[0], "the passage holds both words equally often")
        XCTAssertEqual(common[2], LexicalIndex.idf(df: 10, n: 10) * (LexicalIndex.k1 + 1) /
                       (1 + LexicalIndex.k1 * (1 - LexicalIndex.b + LexicalIndex.b * 4 / 3.8)), accuracy: 1e-5)
    }

    func testPassagesWithoutWordsScoreZeroAndDoNotCountInFrequencies() {
        var index = LexicalIndex()
        index.add([nil, bag("volcano ash"), nil])
        XCTAssertEqual(index.passageCount, 3)
        XCTAssertEqual(index.passagesWithWords, 1)
        let s = index.scores(query("volcano"))
        XCTAssertEqual(s[0], 0)
        XCTAssertEqual(s[2], 0)
        XCTAssertEqual(s[1], LexicalIndex.idf(df: 1, n: 1) * (LexicalIndex.k1 + 1) / (1 + LexicalIndex.k1), accuracy: 1e-6)
    }

    func testMetadataWithoutTermsDecodesAndMalformedTermsAreRefused() throws {
        let old = #"{"source": 0, "start": 0, "end": 5, "preview": "Hello"}"#
        let passage = try JSONDecoder().decode(RetrievalPassage.self, from: Data(old.utf8))
        XCTAssertNil(passage.terms)
        let encoded = String(decoding: try JSONEncoder().encode(passage), as: UTF8.self)
        XCTAssertFalse(encoded.contains("terms"), "a passage without words is written as before")
        let withTerms = RetrievalPassage(source: 0, start: 0, end: 5, preview: "Hello", terms: bag("Hello hello"))
        XCTAssertEqual(try JSONDecoder().decode(RetrievalPassage.self, from: try JSONEncoder().encode(withTerms)), withTerms)
        XCTAssertNotNil(PassageTerms(ids: [2, 1], counts: [1, 1]).problem())
        XCTAssertNotNil(PassageTerms(ids: [1], counts: [0]).problem())
        XCTAssertNotNil(PassageTerms(ids: [1, 2], counts: [1]).problem())
        XCTAssertNil(bag("a b a").problem())
    }
}
