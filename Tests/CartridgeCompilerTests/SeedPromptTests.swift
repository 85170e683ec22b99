@testable import CartridgeCompiler
import CartridgeModel
import XCTest

final class SeedPromptTests: XCTestCase {
    func testSentencesDropTheCutEndsOfAWindowAndShortFragments() {
        let text = "ended mid-way. I always pack books, earplugs, a notebook and a pen. Short one. "
            + "The notebooks I like best are made by Miquelrius in Barcelona!\nWhy do I bring four books when I read only one? and then the window is c"
        let s = Excerpts.sentences(text)
        XCTAssertEqual(s, ["I always pack books, earplugs, a notebook and a pen.",
                           "The notebooks I like best are made by Miquelrius in Barcelona!",
                           "Why do I bring four books when I read only one?"])
    }

    func testAShortTextKeepsItsOnlySentence() {
        XCTAssertEqual(Excerpts.sentences("The lamp can be seen for 18 nautical miles."), ["The lamp can be seen for 18 nautical miles."])
    }

    func testExcerptIsSeededConsecutiveSentencesCutToTheWordLimit() {
        let sentences = (0..<10).map { "Sentence number \($0) has six words." }
        var a = SplitMix64(seed: 3), b = SplitMix64(seed: 3)
        let x = Excerpts.pick(from: sentences, fallback: "", count: 3, rng: &a)
        XCTAssertEqual(x, Excerpts.pick(from: sentences, fallback: "", count: 3, rng: &b))
        XCTAssertTrue(sentences.joined(separator: " ").contains(x))
        var c = SplitMix64(seed: 1)
        XCTAssertEqual(Excerpts.pick(from: sentences, fallback: "", count: 10, maxWords: 7, rng: &c).split(separator: " ").count, 7)
        XCTAssertEqual(Excerpts.pick(from: [], fallback: "only this", count: 1, rng: &c), "only this")
    }

    func testQuestionsEndAtAQuestionMarkAndRequestsAlsoAtAFullStop() {
        XCTAssertTrue(SeedKind.question.ends(after: "?", length: 5))
        XCTAssertFalse(SeedKind.question.ends(after: ".", length: 5))
        XCTAssertTrue(SeedKind.summarization.ends(after: ".", length: 5))
        XCTAssertTrue(SeedKind.creative.ends(after: "\n", length: 5))
        XCTAssertFalse(SeedKind.question.ends(after: "?", length: 2), "not right after the opening words")
        for kind in SeedKind.allCases {
            XCTAssertFalse(kind.openings.isEmpty)
            XCTAssertTrue(kind.prompt(excerpt: "EXCERPT").contains("\"EXCERPT\""))
        }
    }

    func testRepetitionIsFoundWhereTheLoopStartsAgain() {
        let loop = Array(10..<17)  // 7 tokens repeated
        XCTAssertNil(repetitionStart([1, 2, 3] + loop, n: 4))
        let ids = [1, 2, 3] + loop + loop.prefix(4)
        XCTAssertEqual(repetitionStart(ids, n: 4), 10, "cut where the second copy starts")
        XCTAssertNil(repetitionStart(Array(0..<40), n: 12))
    }
}
