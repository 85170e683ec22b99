@testable import CartridgeCompiler
import CartridgeTestSupport
import Foundation
import XCTest

/// The synthesized conversations of a work directory are read back strictly: only a torn last
/// line (a crash mid-write) is dropped; any other damage is an error naming the line, and nothing
/// that was finished is thrown away.
final class WorkDirectoryTests: XCTestCase {
    private func sample(_ index: Int, answer: [Int] = [5, 6], teacher: [TeacherTopK]? = nil) -> SelfStudySample {
        SelfStudySample(index: index, window: 0, kind: .question, question: [1, 2, 3], answer: answer,
                        teacher: teacher ?? answer.map { _ in TeacherTopK(ids: [5, 7], logProbs: [-0.1, -2.5]) })
    }

    private func line(_ group: [SelfStudySample]) throws -> String { String(decoding: try JSONEncoder().encode(group), as: UTF8.self) + "\n" }

    private func workDirectory(samples text: String) throws -> WorkDirectory {
        let dir = try TestResources.temporaryDirectory("work")
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        let work = try WorkDirectory(url: dir, job: Data("job".utf8))
        try Data(text.utf8).write(to: dir.appendingPathComponent("samples.jsonl"))
        return work
    }

    func testATornLastLineIsDroppedAndTruncatedAway() throws {
        let good = try line([sample(0), sample(1)])
        let work = try workDirectory(samples: good + String(try line([sample(2)]).prefix(20)))
        XCTAssertEqual(try work.loadGroups(vocabSize: 100), [[sample(0), sample(1)]])
        XCTAssertEqual(try String(contentsOf: work.url.appendingPathComponent("samples.jsonl"), encoding: .utf8), good)
    }

    func testADamagedLineBeforeTheLastIsAnErrorNamingItAndKeepsTheFile() throws {
        let text = try line([sample(0)]) + "{not json\n" + line([sample(2)])
        let work = try workDirectory(samples: text)
        XCTAssertThrowsError(try work.loadGroups(vocabSize: 100)) { error in
            guard case let .corruptSamples(_, line, _)? = error as? WorkDirectoryError else { return XCTFail("\(error)") }
            XCTAssertEqual(line, 2)
        }
        XCTAssertEqual(try String(contentsOf: work.url.appendingPathComponent("samples.jsonl"), encoding: .utf8), text, "nothing truncated")
    }

    func testTokenIdsOutsideTheVocabularyAreAnErrorNamingTheLineAndTheId() throws {
        let badAnswer = try workDirectory(samples: try line([sample(0)]) + line([sample(1, answer: [5, 100])]))
        XCTAssertThrowsError(try badAnswer.loadGroups(vocabSize: 100)) { error in
            XCTAssertEqual(error as? WorkDirectoryError, .corruptSamples(path: badAnswer.url.appendingPathComponent("samples.jsonl").path, line: 2,
                                                                          reason: "conversation 1 holds token id 100, outside 0..<100"))
        }
        let badTeacher = try workDirectory(samples: try line([sample(0, teacher: [TeacherTopK(ids: [-1], logProbs: [-1]), TeacherTopK(ids: [1], logProbs: [-1])])]))
        XCTAssertThrowsError(try badTeacher.loadGroups(vocabSize: 100)) { error in
            XCTAssertTrue("\(error)".contains("teacher token id -1"), "\(error)")
        }
        let ragged = try workDirectory(samples: try line([sample(0, teacher: [TeacherTopK(ids: [1, 2], logProbs: [-1]), TeacherTopK(ids: [1], logProbs: [-1])])]))
        XCTAssertThrowsError(try ragged.loadGroups(vocabSize: 100))
    }
}
