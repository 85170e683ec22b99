@testable import CartridgeModel
import CartridgeTestSupport
import Foundation
import XCTest

final class TokenizerTests: XCTestCase {
    private struct ReferenceEntry: Decodable {
        let name: String
        let text: String
        let parse_special: Bool
        let ids: [Int]
    }

    private func referenceEntries() throws -> [ReferenceEntry] {
        let url = TestResources.referenceDirectory.appendingPathComponent("tokenizer.json")
        return try JSONDecoder().decode([ReferenceEntry].self, from: Data(contentsOf: url))
    }

    // MARK: - Encoding

    func testEncodingMatchesEveryLlamaCppReferenceEntry() throws {
        let tokenizer = try TestResources.model().tokenizer
        let entries = try referenceEntries()
        XCTAssertEqual(entries.count, 12)
        for entry in entries {
            let ids = tokenizer.encode(entry.text, parseSpecial: entry.parse_special)
            XCTAssertEqual(ids, entry.ids, "reference entry '\(entry.name)'")
        }
    }

    func testWhitespaceRunBeforeANumberIsOnePiece() throws {
        // The smollm pre-tokenizer splits numbers off first, so the whitespace in front of a
        // number ends its chunk and stays together (README, entry whitespace_before_digits).
        let tokenizer = try TestResources.model().tokenizer
        XCTAssertEqual(tokenizer.encode(" \n1", parseSpecial: false), [3717, 33])
        XCTAssertEqual(tokenizer.encode("\n\n1", parseSpecial: false), [1116, 33])
        XCTAssertEqual(tokenizer.encode("  1", parseSpecial: false), [256, 33])
        XCTAssertEqual(tokenizer.encode(" ½", parseSpecial: false), [216, 16738])
    }

    func testPreTokenizerSplitsEveryDigitAndKeepsWhitespaceBeforeNumbers() {
        XCTAssertEqual(PreTokenizer.split("  Leading famous \n1984 ad"),
                       [" ", " Leading", " famous", " \n", "1", "9", "8", "4", " ad"])
        XCTAssertEqual(PreTokenizer.split("it's I'LL we'll"), ["it", "'s", " I", "'", "LL", " we", "'ll"])
        XCTAssertEqual(PreTokenizer.split("x  = ½!?\n\n\tend  "), ["x", " ", " =", " ", "½", "!?", "\n\n", "\t", "end", "  "])
        XCTAssertEqual(PreTokenizer.split(""), [])
    }

    func testSpecialTokensAreSingleIdsOnlyWhenParsingSpecialTokens() throws {
        let tokenizer = try TestResources.model().tokenizer
        XCTAssertEqual(tokenizer.encode("<|im_end|>", parseSpecial: true), [2])
        XCTAssertEqual(tokenizer.encode("a<|im_start|><|im_end|>b", parseSpecial: true).filter { $0 < 3 }, [1, 2])
        let plain = tokenizer.encode("<|im_end|>", parseSpecial: false)
        XCTAssertGreaterThan(plain.count, 1)
        XCTAssertFalse(plain.contains(where: tokenizer.isControl))
    }

    func testEncodingNeverAddsBOS() throws {
        let tokenizer = try TestResources.model().tokenizer
        XCTAssertEqual(tokenizer.bosID, 1)
        XCTAssertEqual(tokenizer.eosID, 2)
        XCTAssertEqual(tokenizer.encode("", parseSpecial: true), [])
        XCTAssertNotEqual(tokenizer.encode("Hello", parseSpecial: true).first, 1)
    }

    // MARK: - Decoding

    func testDecodeInvertsEncodeForAssortedText() throws {
        let tokenizer = try TestResources.model().tokenizer
        let samples = [
            "The quick brown fox jumps over the lazy dog.",
            "naïve café, Ångström, façade, crème brûlée, Øresund, Straße",
            "日本語のテキストと中文文本，한국어 텍스트도。",
            "Emoji: 🚀🔥👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️",
            "func f(_ x: Int) -> Int {\n\treturn x &* 2 // comment\n}\n",
            "  leading, trailing and\tmixed \r\n whitespace  \n\n",
            "Numbers 1234567890 ½ ² ٣ Ⅻ and x²+y²=z²",
            "Zero\u{200B}width joiner\u{200D} and combining e\u{0301} marks, NBSP\u{00A0}here",
            "<|im_start|>user\nHi<|im_end|>",
        ]
        for sample in samples {
            for parseSpecial in [false, true] {
                let ids = tokenizer.encode(sample, parseSpecial: parseSpecial)
                XCTAssertEqual(tokenizer.decode(ids), sample, "parseSpecial: \(parseSpecial)")
                XCTAssertEqual(tokenizer.decodeBytes(ids), Array(sample.utf8))
            }
        }
    }

    func testControlTokensDecodeToTheirOwnText() throws {
        let tokenizer = try TestResources.model().tokenizer
        XCTAssertTrue(tokenizer.isControl(2))
        XCTAssertFalse(tokenizer.isControl(504))
        XCTAssertEqual(tokenizer.decode([504, 3575, 282, 4649, 314, 7042, 30, 2]),
                       "The capital of France is Paris.<|im_end|>")
        XCTAssertEqual(tokenizer.tokenString(2), "<|im_end|>")
        XCTAssertEqual(tokenizer.id(forToken: "<|im_start|>"), 1)
        XCTAssertEqual(tokenizer.tokenString(216), "Ġ")
    }

    func testDecodingSkipsIdsOutsideTheVocabulary() throws {
        let tokenizer = try TestResources.model().tokenizer
        XCTAssertEqual(tokenizer.vocabularySize, 49152)
        XCTAssertEqual(tokenizer.decode([-1, 504, 49152, 1_000_000]), "The")
        XCTAssertNil(tokenizer.tokenString(49152))
        XCTAssertFalse(tokenizer.isControl(-3))
    }

    // MARK: - Streaming

    func testStreamingDecoderReassemblesCharactersSplitAcrossTokens() throws {
        let tokenizer = try TestResources.model().tokenizer
        let text = "naïve café 日本語 🚀 done"
        let ids = tokenizer.encode(text, parseSpecial: false)
        // The test is only meaningful if some token ends inside a multi-byte character.
        let splitsACharacter = ids.contains { id in
            let bytes = tokenizer.decodeBytes([id])
            return !String(decoding: bytes, as: UTF8.self).utf8.elementsEqual(bytes)
        }
        XCTAssertTrue(splitsACharacter)

        var decoder = tokenizer.streamingDecoder()
        var pieces: [String] = []
        for id in ids { pieces.append(decoder.append(id)) }
        pieces.append(decoder.finish())
        XCTAssertEqual(pieces.joined(), text)
        XCTAssertFalse(pieces.contains { $0.unicodeScalars.contains("\u{FFFD}") })
        XCTAssertTrue(pieces.contains(""), "a token ending mid-character must emit nothing yet")
    }

    func testStreamingDecoderFlushesAnIncompleteCharacterLossilyOnFinish() throws {
        let tokenizer = try TestResources.model().tokenizer
        let rocket = tokenizer.encode("🚀", parseSpecial: false)
        XCTAssertGreaterThan(rocket.count, 1)
        var decoder = tokenizer.streamingDecoder()
        XCTAssertEqual(decoder.append(rocket[0]), "")
        XCTAssertEqual(decoder.finish(), "\u{FFFD}")
        XCTAssertEqual(decoder.finish(), "")
        // After finish the decoder starts afresh.
        var output = ""
        for id in rocket { output += decoder.append(id) }
        XCTAssertEqual(output, "🚀")
    }

    func testStreamingDecoderEmitsControlTokenText() throws {
        let tokenizer = try TestResources.model().tokenizer
        var decoder = tokenizer.streamingDecoder()
        XCTAssertEqual(decoder.append(504), "The")
        XCTAssertEqual(decoder.append(2), "<|im_end|>")
        XCTAssertEqual(decoder.append(-5), "")
    }

    // MARK: - Identity and errors

    func testFingerprintIsAStableHashOfTheVocabulary() throws {
        let tokenizer = try TestResources.model().tokenizer
        // Saved artifacts record this hash, so it must not change for the same vocabulary.
        XCTAssertEqual(tokenizer.fingerprint, "60042d1b09d47812")
        let small = try Tokenizer(tokens: ["a", "b", "ab"], merges: ["a b"], tokenTypes: [1, 1, 1], bosID: nil, eosID: nil)
        let same = try Tokenizer(tokens: ["a", "b", "ab"], merges: ["a b"], tokenTypes: [1, 1, 1], bosID: nil, eosID: nil)
        let otherType = try Tokenizer(tokens: ["a", "b", "ab"], merges: ["a b"], tokenTypes: [1, 1, 3], bosID: nil, eosID: nil)
        XCTAssertEqual(small.fingerprint, same.fingerprint)
        XCTAssertNotEqual(small.fingerprint, otherType.fingerprint)
        XCTAssertNotEqual(small.fingerprint, tokenizer.fingerprint)
    }

    func testInitRejectsInconsistentVocabularies() {
        XCTAssertThrowsError(try Tokenizer(tokens: [], merges: [], tokenTypes: [], bosID: nil, eosID: nil)) {
            XCTAssertEqual($0 as? TokenizerError, .emptyVocabulary)
        }
        XCTAssertThrowsError(try Tokenizer(tokens: ["a", "b"], merges: ["a c"], tokenTypes: [1, 1], bosID: nil, eosID: nil)) {
            XCTAssertEqual($0 as? TokenizerError, .mergeTokenNotInVocabulary(index: 0, merge: "a c", token: "c"))
            XCTAssertTrue("\($0)".contains("not in the vocabulary"))
        }
        XCTAssertThrowsError(try Tokenizer(tokens: ["a", "b"], merges: ["a b"], tokenTypes: [1, 1], bosID: nil, eosID: nil)) {
            XCTAssertEqual($0 as? TokenizerError, .mergeResultNotInVocabulary(index: 0, merge: "a b", result: "ab"))
        }
        XCTAssertThrowsError(try Tokenizer(tokens: ["a", "b"], merges: ["ab"], tokenTypes: [1, 1], bosID: nil, eosID: nil)) {
            XCTAssertEqual($0 as? TokenizerError, .malformedMerge(index: 0, merge: "ab"))
        }
        XCTAssertThrowsError(try Tokenizer(tokens: ["a"], merges: [], tokenTypes: [1, 1], bosID: nil, eosID: nil)) {
            XCTAssertEqual($0 as? TokenizerError, .tokenTypeCountMismatch(tokens: 1, types: 2))
        }
        XCTAssertThrowsError(try Tokenizer(tokens: ["a"], merges: [], tokenTypes: [1], bosID: 1, eosID: nil)) {
            XCTAssertEqual($0 as? TokenizerError, .specialTokenOutOfRange(name: "BOS", id: 1, vocabularySize: 1))
        }
    }

    func testLowestRankMergeWinsAndTiesGoLeftmost() throws {
        // "abc": "b c" outranks "a b", so the result is a + bc. "aaa": leftmost "a a" first.
        let tokenizer = try Tokenizer(tokens: ["a", "b", "c", "ab", "bc", "aa"], merges: ["b c", "a b", "a a"],
                                      tokenTypes: [1, 1, 1, 1, 1, 1], bosID: nil, eosID: nil)
        XCTAssertEqual(tokenizer.encode("abc", parseSpecial: false), [0, 4])
        XCTAssertEqual(tokenizer.encode("aaa", parseSpecial: false), [5, 0])
        XCTAssertEqual(tokenizer.encode("abab", parseSpecial: false), [3, 3])
    }

    // MARK: - Performance

    func testEncodingOneMegabyteTakesWellUnderASecond() throws {
        let tokenizer = try TestResources.model().tokenizer
        let text = Self.syntheticText(byteCount: 1 << 20)
        XCTAssertGreaterThanOrEqual(text.utf8.count, 1 << 20)
        let clock = ContinuousClock()
        var ids: [Int] = []
        let elapsed = clock.measure { ids = tokenizer.encode(text, parseSpecial: false) }
        XCTAssertGreaterThan(ids.count, 100_000)
        XCTAssertLessThan(elapsed, .seconds(1), "encoding 1 MB took \(elapsed)")
        XCTAssertEqual(tokenizer.decode(ids), text)
    }

    /// Deterministic English-like text: common words, invented words, numbers, punctuation,
    /// some accented and CJK text, and line breaks.
    static func syntheticText(byteCount: Int) -> String {
        let words = """
        the of and to in is that for it as was with be by on not he this are or his from at which \
        but have an they you were her she there been one all we their has would when if so no will \
        more about can said into time only some could them other than then now look people year \
        tokenizer model training cartridge attention gradient essay startup language programmers \
        naïve café résumé 日本語 über
        """.split(separator: " ").map(String.init)
        let letters = Array("abcdefghijklmnopqrstuvwxyz")
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        var text = ""
        text.reserveCapacity(byteCount + 64)
        var sentenceStart = true
        while text.utf8.count < byteCount {
            var word: String
            switch next(20) {
            case 0: word = String((0..<(3 + next(9))).map { _ in letters[next(letters.count)] })
            case 1: word = String(next(100_000))
            default: word = words[next(words.count)]
            }
            if sentenceStart { word = word.prefix(1).uppercased() + word.dropFirst() }
            text += word
            sentenceStart = false
            switch next(16) {
            case 0: text += ". "; sentenceStart = true
            case 1: text += ", "
            case 2: text += ".\n\n"; sentenceStart = true
            case 3: text += "'s "
            default: text += " "
            }
        }
        return text
    }
}
