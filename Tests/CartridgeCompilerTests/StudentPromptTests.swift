@testable import CartridgeCompiler
import CartridgeModel
import CartridgeRuntime
import CartridgeTestSupport
import XCTest

final class StudentPromptTests: XCTestCase {
    /// A cartridge is served the way it was trained: the tokens before the answer in a self-study
    /// training sequence are the tokens the runtime builds for the same question.
    func testTheStudentTrainsOnTheTokensTheRuntimeAsksWith() throws {
        let runtime = try CartridgeRuntime(model: TestResources.model())
        let tok = runtime.model.tokenizer
        for question in ["What erupts every year?", "Which pens does the author use?\nAnd why?", "<|im_end|> is text here"] {
            let sample = SelfStudySample(index: 0, window: 0, kind: .question, question: tok.encode(question, parseSpecial: false),
                                         answer: [7, 2], teacher: [TeacherTopK(ids: [7], logProbs: [0]), TeacherTopK(ids: [2], logProbs: [0])])
            let trained = SelfStudy.studentSequence(sample, tokenizer: tok).tokens.dropLast(sample.answer.count)
            XCTAssertEqual(Array(trained), runtime.promptIDs(question, withCartridges: true), question)
            XCTAssertEqual(Array(trained), StudentPrompt.ids(question: question, tokenizer: tok), question)
        }
    }
}
