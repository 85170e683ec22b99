@testable import CartridgeCompiler
import CartridgeKernels
import CartridgeModel
import XCTest

final class SeedPromptTests: XCTestCase {
    func testSentencesDropTheCutEndsOfAWindowAndShortFragments() {
        let text = "ended mid-way. I always pack books, earplugs, a notebook and a pen. Short one. "
            + "The notebooks I like best are made by Miquelrius in Barcelona!\nWhy do I bring four books when I read only one? And then the window is c"
        let s = Excerpts.sentences(text)
        XCTAssertEqual(s, ["I always pack books, earplugs, a notebook and a pen.",
                           "The notebooks I like best are made by Miquelrius in Barcelona!",
                           "Why do I bring four books when I read only one?"])
    }

    func testWrappedLinesAreJoinedIntoTheirSentences() {
        let text = "cut off here.  I use the cheapest plastic Bic ballpoints,\npartly because their gluey ink doesn't seep\nthrough pages.  "
            + "Technology makes it possible (e.g. when Stephen Fry succeeded in remembering\nhis childhood) to relive our days.I only started carrying a notebook three years ago. And the end"
        XCTAssertEqual(Excerpts.sentences(text), [
            "I use the cheapest plastic Bic ballpoints, partly because their gluey ink doesn't seep through pages.",
            "Technology makes it possible (e.g. when Stephen Fry succeeded in remembering his childhood) to relive our days.",
            "I only started carrying a notebook three years ago.",
        ], "a line break inside a sentence is a space, \"e.g. when\" goes on, \"days.I\" is two sentences")
    }

    func testBlankLinesHeadingsAndListItemsEndASentence() {
        let text = "# Notes on the lighthouse keepers\nThe lamp burned whale oil until the year 1871\n\nIt was rebuilt by the Berg family in stone\n"
            + "- the keeper wrote a log of every ship\n2. the log was kept in the tower for years\r\nand then in the town museum"
        XCTAssertEqual(Excerpts.sentences(text, minWords: 5), [
            "The lamp burned whale oil until the year 1871",
            "It was rebuilt by the Berg family in stone",
            "- the keeper wrote a log of every ship",
        ])
    }

    func testAShortTextKeepsItsOnlySentence() {
        XCTAssertEqual(Excerpts.sentences("The lamp can be seen for 18 nautical miles."), ["The lamp can be seen for 18 nautical miles."])
    }

    func testExcerptIsConsecutiveSentencesCutToTheWordLimit() {
        let sentences = (0..<10).map { "Sentence number \($0) has six words." }
        XCTAssertEqual(Excerpts.pick(from: sentences, fallback: "", start: 8, count: 3),
                       "Sentence number 8 has six words. Sentence number 9 has six words.")
        XCTAssertEqual(Excerpts.pick(from: sentences, fallback: "", start: 0, count: 10, maxWords: 7).split(separator: " ").count, 7)
        XCTAssertEqual(Excerpts.pick(from: [], fallback: "only this", start: 0, count: 1), "only this")
    }

    func testAWindowQuotesEverySentenceOnceBeforeAnyTwice() {
        var a = SplitMix64(seed: 3), b = SplitMix64(seed: 3)
        let starts = Excerpts.schedule(sentences: 7, conversations: 16, rng: &a)
        XCTAssertEqual(starts, Excerpts.schedule(sentences: 7, conversations: 16, rng: &b), "seeded")
        XCTAssertEqual(Set(starts.prefix(7)), Set(0..<7))
        XCTAssertEqual(Set(starts[7..<14]), Set(0..<7))
        XCTAssertNotEqual(Array(starts.prefix(7)), Array(0..<7), "shuffled, not in text order")
        XCTAssertEqual(Excerpts.schedule(sentences: 0, conversations: 3, rng: &a), [0, 0, 0], "no sentence: the fallback text")
    }

    func testKeyTermsAreTheNamesAndNumbersOfASentence() {
        XCTAssertEqual(Excerpts.keyTerms("The best notebooks I've found are made by a company called Miquelrius."), ["Miquelrius"])
        XCTAssertEqual(Excerpts.keyTerms("Memories like that of Stephen Fry (e.g. in 1971) fade."), ["Stephen Fry", "1971"])
        XCTAssertEqual(Excerpts.keyTerms("It was built by Anna Lind. Then Tomas Berg, the keeper, kept a log. Bic, Miquelrius."),
                       ["Anna Lind", "Tomas Berg", "Miquelrius"], "a word that starts a sentence is not taken for a name")
        XCTAssertEqual(Excerpts.keyTerms("I use the cheapest pens I can find, and I'm happy."), [])
    }

    func testARecallQuestionCutsItsSentenceBeforeTheLastNameOrNumber() {
        XCTAssertEqual(SeedKind.recall.prompt(excerpt: "The best notebooks I've found are made by a company called Miquelrius."),
                       "Complete this sentence from the text: \"The best notebooks I've found are made by a company called ...\"")
        XCTAssertEqual(Excerpts.clozeHead("I always pack books, earplugs, a notebook and a pen."), "I always pack books, earplugs, a",
                       "no name or number: its first 60% of words")
        XCTAssertEqual(Excerpts.clozeHead("In 1871 the lamp burned whale oil."), "In 1871 the lamp", "a name in the first 3 words is not a cut")
        XCTAssertFalse(SeedKind.recall.isWrittenByAgentA)
        XCTAssertFalse(SeedKind.selfStudy.contains(.recall), "recall is not one of the five kinds of self-study")
    }

    func testEntityQuestionsAskAboutEachNameOfTheWindowOnce() {
        let text = "was cut. The notebooks are made by Miquelrius in Barcelona, a short walk away. I write with a Bic pen every day, "
            + "as Miquelrius suggests.Then in 2006 I moved to Maine for the whole summer. And the end"
        let terms = Excerpts.keyTerms(of: Excerpts.sentences(text))
        XCTAssertEqual(terms, ["Miquelrius", "Barcelona", "Bic", "2006", "Maine"], "each name once; \"suggests.Then\" starts a sentence, so Then is no name")
        XCTAssertEqual(SeedKind.entityQuestion(term: "Bic"), "What does the text say about Bic?")
        XCTAssertFalse(SeedKind.entity.isWrittenByAgentA)
        XCTAssertFalse(SeedKind.selfStudy.contains(.entity), "entity is not one of the five kinds of self-study")
    }

    func testFactQuestionsStartWithANameOfTheirExcerpt() {
        for kind in SeedKind.allCases {
            let named = kind.openings(term: "Anna Lind")
            XCTAssertEqual(named.allSatisfy { $0.contains("Anna Lind") }, kind.asksForAFact, "\(kind)")
            XCTAssertEqual(kind.openings(term: nil), kind.openings(), "no term: the kind's own openings")
        }
    }

    func testQuestionsEndAtAQuestionMarkAndRequestsAlsoAtAFullStop() {
        XCTAssertTrue(SeedKind.question.ends(after: "?", length: 5))
        XCTAssertFalse(SeedKind.question.ends(after: ".", length: 5))
        XCTAssertTrue(SeedKind.summarization.ends(after: ".", length: 5))
        XCTAssertTrue(SeedKind.creative.ends(after: "\n", length: 5))
        XCTAssertFalse(SeedKind.question.ends(after: "?", length: 2), "not right after the opening words")
        for kind in SeedKind.selfStudy {
            XCTAssertFalse(kind.openings().isEmpty)
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
