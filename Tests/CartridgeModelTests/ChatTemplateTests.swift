@testable import CartridgeModel
import XCTest

final class ChatTemplateTests: XCTestCase {
    func testDefaultSystemPromptIsInsertedBeforeAUserMessage() {
        let t = ChatTemplate()
        XCTAssertEqual(t.render([ChatMessage(.user, "Hi")]),
                       "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    }

    func testExplicitSystemMessageReplacesTheDefault() {
        let t = ChatTemplate()
        XCTAssertEqual(t.render([ChatMessage(.system, "S"), ChatMessage(.user, "U")], addGenerationPrompt: false),
                       "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n")
    }

    func testTurnsCanBeRenderedWithoutAnySystemPrompt() {
        let t = ChatTemplate()
        XCTAssertEqual(t.render([ChatMessage(.user, "Q"), ChatMessage(.assistant, "A")], addGenerationPrompt: false, includeDefaultSystem: false),
                       "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n")
    }
}
