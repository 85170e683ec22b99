import CartridgeFormat
@testable import CartridgeRuntime
import XCTest

/// `ExactIndex`'s ranking from passage vectors and words together: no model needed.
final class FusedRetrievalTests: XCTestCase {
    private func words(_ text: String) -> PassageTerms { PassageTerms(text: text) }

    func testAnExactWordMatchLiftsACartridgeTheVectorsRankSecond() {
        var index = ExactIndex(dimension: 2)
        _ = index.add(vectors: [1, 0], words: [words("Feed the sourdough starter flour and water.")])
        _ = index.add(vectors: [0.96, 0.28], words: [words("Mount Etna in Sicily erupts almost every year.")])
        _ = index.add(vectors: [0, 1], words: [words("A pawn on the last rank is promoted.")])
        let vector: [Float] = [1, 0]
        XCTAssertEqual(index.search(RetrievalQuery(vector: vector, words: []), k: 3).map(\.cartridge), [0, 1, 2],
                       "by the vectors alone, cartridge 0 is first")
        let found = index.search(RetrievalQuery(vector: vector, text: "Which volcano in Sicily erupts?"), k: 3)
        XCTAssertEqual(found.map(\.cartridge), [1, 0, 2])
        XCTAssertGreaterThan(found[0].score, found[1].score)
    }

    func testTheFusedScoreIsTheMeanOfTheStandardizedScores() {
        let fused = ExactIndex.fuse(cosine: [1, 0.96, 0], bm25: [0, 3, 0], hasWords: [true, true, true])
        let cosine = ExactIndex.standardized([1, 0.96, 0], over: [0, 1, 2]), bm25 = ExactIndex.standardized([0, 3, 0], over: [0, 1, 2])
        for i in 0..<3 { XCTAssertEqual(fused[i], (cosine[i] + bm25[i]) / 2, accuracy: 1e-6) }
        XCTAssertEqual(bm25.reduce(0, +), 0, accuracy: 1e-6)
        XCTAssertEqual(bm25.map { $0 * $0 }.reduce(0, +) / 3, 1, accuracy: 1e-5, "unit variance")
        XCTAssertEqual(ExactIndex.standardized([2, 2], over: [0, 1]), [0, 0], "equal scores say nothing")
    }

    func testACartridgeWithoutWordsIsRankedByItsVectorsBesideOnesWithWords() {
        var index = ExactIndex(dimension: 2)
        _ = index.add(vectors: [1, 0], words: [nil])   // written before words were stored
        _ = index.add(vectors: [0.6, 0.8], words: [words("alpha")])
        _ = index.add(vectors: [0, 1], words: [words("beta")])
        for text in ["gamma", "alpha"] {
            let found = index.search(RetrievalQuery(vector: [1, 0], text: text), k: 3)
            XCTAssertEqual(found.first?.cartridge, 0, "its vector is the closest (query \(text))")
            let cosine = ExactIndex.standardized([1, 0.6, 0], over: [0, 1, 2])
            XCTAssertEqual(found[0].score, cosine[0], accuracy: 1e-6, "its standardized cosine counts for both halves")
        }
    }
}
