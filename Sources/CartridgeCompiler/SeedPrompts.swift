import CartridgeModel

/// The five kinds of seed prompt that make agent A write a user message about the corpus window.
///
/// A 135M model asked to "write a question about the text" writes vague, self-referential or
/// looping messages. Three things keep it concrete: every prompt quotes an excerpt of the window
/// (a sentence for questions, a few sentences for requests), agent A's reply is started for it
/// with a few words (`openings`), and the reply ends at its first question mark, full stop or
/// line break (`ends(after:)`).
public enum SeedKind: String, Codable, Sendable, CaseIterable {
    case structuring, summarization, question, useCase, creative

    /// Sentences quoted in the prompt: questions aim at one sentence, requests at a short passage.
    public var excerptSentences: Int {
        switch self {
        case .question, .useCase: return 1
        case .structuring, .summarization, .creative: return 3
        }
    }

    /// The instruction given to the question-writing agent, quoting `excerpt` from the window.
    public func prompt(excerpt: String) -> String {
        switch self {
        case .structuring:
            return "Here is a passage from the text above:\n\"\(excerpt)\"\nWrite a request asking me to list the facts of this passage (names, numbers, objects, steps) as bullet points or a table. Name the subject of the passage."
        case .summarization:
            return "Here is a passage from the text above:\n\"\(excerpt)\"\nWrite a request asking me to summarize what the text says about the main person, object or idea of this passage. Name it."
        case .question:
            return "Here is a fact stated in the text above:\n\"\(excerpt)\"\nWrite a question that asks for this fact. Name the person, thing or place it is about, so the question makes sense on its own. Do not include the answer."
        case .useCase:
            return "Here is a detail from the text above:\n\"\(excerpt)\"\nSomeone needs this detail for a real task, such as writing a report or planning a trip. Write the question they would ask, naming what it is about."
        case .creative:
            return "Here is a passage from the text above:\n\"\(excerpt)\"\nWrite a question asking me to explain the idea of this passage in my own words, or to apply it to a new example."
        }
    }

    /// Words agent A's reply starts with (one is chosen per conversation).
    public var openings: [String] {
        switch self {
        case .structuring: return ["Make a bulleted list of the", "Make a table of the", "List the"]
        case .summarization: return ["Summarize what the text says about", "Briefly summarize the part of the text about"]
        case .question: return ["What", "Which", "Who", "How many", "Where", "Why", "How", "When"]
        case .useCase: return ["According to the text, what", "I need to know: what", "In the text, which", "What exactly does the text say about"]
        case .creative: return ["Explain", "Why does the author say that", "How would you apply the idea that"]
        }
    }

    /// Whether a message of this kind is complete once its `length`-th generated token decodes to
    /// `piece`: questions end at "?", requests also at ".", every kind at a line break (but not
    /// within the first 3 tokens, which would leave a bare opening).
    public func ends(after piece: String, length: Int) -> Bool {
        if length < 3 { return false }
        if piece.contains("\n") || piece.contains("?") { return true }
        switch self {
        case .structuring, .summarization: return piece.contains(".")
        case .question, .useCase, .creative: return false
        }
    }
}

/// Sentences of a corpus window, for quoting in seed prompts.
public enum Excerpts {
    /// The window's sentences (split after ".", "?" or "!" followed by white space, and at line
    /// breaks), without fragments of fewer than `minWords` words. A window cut out of a longer
    /// text usually starts and ends mid-sentence, so its first and last pieces are dropped when
    /// there are enough others.
    public static func sentences(_ text: String, minWords: Int = 6) -> [String] {
        var pieces: [String] = [], current = ""
        let chars = Array(text)
        for (i, c) in chars.enumerated() {
            if c == "\n" {
                pieces.append(current); current = ""; continue
            }
            current.append(c)
            if ".?!".contains(c), i + 1 < chars.count, chars[i + 1].isWhitespace {
                pieces.append(current); current = ""
            }
        }
        pieces.append(current)
        if pieces.count >= 4 { pieces = Array(pieces.dropFirst().dropLast()) }
        return pieces.map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { $0.split(separator: " ").count >= minWords }
    }

    /// `count` consecutive sentences from a seeded position, at most `maxWords` words; the whole
    /// text (cut to `maxWords`) when it has no sentence long enough.
    public static func pick(from sentences: [String], fallback: String, count: Int, maxWords: Int = 60,
                            rng: inout SplitMix64) -> String {
        let text: String
        if sentences.isEmpty {
            text = fallback
        } else {
            let start = Int(rng.next() % UInt64(sentences.count))
            text = sentences[start..<min(sentences.count, start + count)].joined(separator: " ")
        }
        let words = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        return words.prefix(maxWords).joined(separator: " ")
    }
}

/// Where a greedy answer starts repeating itself: the index of the second copy when its last `n`
/// tokens already occurred earlier, else nil. Greedy decoding of a small model often loops; the
/// loop teaches nothing, so answers are cut there.
public func repetitionStart(_ ids: [Int], n: Int = 12) -> Int? {
    guard ids.count >= 2 * n else { return nil }
    let tail = ids[(ids.count - n)...]
    for start in 0...(ids.count - 2 * n) where ids[start] == tail.first! {
        if ids[start..<(start + n)].elementsEqual(tail) { return ids.count - n }
    }
    return nil
}
