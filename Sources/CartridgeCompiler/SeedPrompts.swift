import CartridgeKernels
import CartridgeModel
import Foundation

/// The kinds of conversation about a corpus window: five seed prompts that make agent A write the
/// user message (the method's), and `recall`, whose user message is cut from the window.
///
/// A 135M model asked to "write a question about the text" writes vague, self-referential or
/// looping messages. Four things keep it concrete: every prompt quotes an excerpt of the window
/// (a sentence for questions, a few sentences for requests), agent A's reply is started for it
/// with a few words (`openings`), which for fact questions name a name or number of the excerpt
/// (`Excerpts.keyTerms`), and the reply ends at its first question mark, full stop or line break
/// (`ends(after:)`).
public enum SeedKind: String, Codable, Sendable, CaseIterable {
    case structuring, summarization, question, useCase, creative
    /// Not one of the five kinds of self-study: the user turn is not written by agent A but cut
    /// from the corpus, "Complete this sentence from the text: "{the sentence's first words}"", so
    /// agent B's answer recites the sentence's end (a name, a number, the point) from the window.
    /// Half of the mix before `recite` and `entity` replaced it (`--kinds` still takes it).
    case recall
    /// Not one of the five kinds either: "What does the text say about {name}?", with no agent A,
    /// for each name and number of the window in turn (`Excerpts.keyTerms`), so that every named
    /// fact of the corpus is asked about, not only those agent A happens to pick.
    case entity
    /// Not one of the five kinds either: the user turn of `recall`, and B's answer is the sentence
    /// itself, read from the corpus instead of generated, with the teacher's distribution recorded
    /// along it (teacher forcing). The 135M model mostly recites another sentence than the one
    /// asked for; here every word of the right one is taught.
    case recite

    /// The five kinds of the method.
    public static let selfStudy: [SeedKind] = [.structuring, .summarization, .question, .useCase, .creative]

    /// Whether agent A writes the user turn (every kind but `recall`, `entity` and `recite`).
    public var isWrittenByAgentA: Bool { !(self == .recall || self == .entity || self == .recite) }

    /// Sentences quoted in the prompt: questions aim at one sentence, requests at a short passage.
    public var excerptSentences: Int {
        switch self {
        case .question, .useCase, .recall, .entity, .recite: return 1
        case .structuring, .summarization, .creative: return 3
        }
    }

    /// Whether this kind asks for one fact, so that its question can be about a name or number.
    public var asksForAFact: Bool { self == .question || self == .useCase }

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
        case .recall, .recite:
            return "Complete this sentence from the text: \"\(Excerpts.clozeHead(excerpt)) ...\""
        case .entity:
            return Self.entityQuestion(term: Excerpts.keyTerms(excerpt).first ?? "this passage: \"\(excerpt)\"")
        }
    }

    /// The user turn of an entity conversation about `term`.
    public static func entityQuestion(term: String) -> String {
        "What does the text say about \(term)?"
    }

    /// Words agent A's reply starts with (one is chosen per conversation). Given a `term` of the
    /// excerpt (a name or number), the kinds that ask for a fact start with a question about it:
    /// told in words to "ask about the fact", a 135M model asks vague questions ("Who is the person
    /// mentioned in the text?") and the answers invent the rest; asked about a name of the excerpt,
    /// the answer more often repeats what the window says of it.
    public func openings(term: String? = nil) -> [String] {
        if let t = term, asksForAFact {
            switch self {
            case .useCase: return ["For my notes: what exactly does the text say about \(t)", "I need the details: what does the text say about \(t)"]
            default: return ["What does the text say about \(t)", "What do we learn about \(t)"]
            }
        }
        switch self {
        case .structuring: return ["Make a bulleted list of the", "Make a table of the", "List the"]
        case .summarization: return ["Summarize what the text says about", "Briefly summarize the part of the text about"]
        case .question: return ["What", "Which", "Who", "How many", "Where", "Why", "How", "When"]
        case .useCase: return ["According to the text, what", "I need to know: what", "In the text, which", "What exactly does the text say about"]
        case .creative: return ["Explain", "Why does the author say that", "How would you apply the idea that"]
        case .recall, .entity, .recite: return [""]
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
        case .question, .useCase, .creative, .recall, .entity, .recite: return false
        }
    }
}

/// Sentences of a corpus window, for quoting in seed prompts.
public enum Excerpts {
    /// The window's sentences. Lines of prose are usually wrapped, so a line break is a space,
    /// except at a blank line or before a line that starts a block (a heading, list item, quote,
    /// table row or code fence). A sentence ends after ".", "?" or "!" (and any closing quotes or
    /// brackets) followed by white space and a word that does not start in lower case ("e.g. when"
    /// goes on), or glued to a capital ("ideas.The", as text extracted from HTML often is).
    /// Fragments of fewer than `minWords` words are dropped. A window cut out of a longer text
    /// usually starts and ends mid-sentence, so its first and last pieces are dropped when there
    /// are enough others.
    public static func sentences(_ text: String, minWords: Int = 6) -> [String] {
        let chars = Array(unwrapped(text))
        var pieces: [String] = [], current = ""
        var i = 0
        while i < chars.count {
            let c = chars[i]
            i += 1
            if c == "\n" {
                pieces.append(current); current = ""; continue
            }
            current.append(c)
            guard ".?!".contains(c) else { continue }
            var j = i  // past any closing quotes or brackets
            while j < chars.count, "\"'\u{201D}\u{2019})]".contains(chars[j]) { j += 1 }
            var k = j  // past the spaces after them
            while k < chars.count, chars[k] == " " || chars[k] == "\t" { k += 1 }
            let spaced = k > j && (k == chars.count || !chars[k].isLowercase)
            let glued = j == i && j < chars.count && chars[j].isUppercase && i >= 2 && chars[i - 2].isLowercase
            if spaced || glued {
                current += String(chars[i..<j])
                pieces.append(current); current = ""
                i = j
            }
        }
        pieces.append(current)
        if pieces.count >= 4 { pieces = Array(pieces.dropFirst().dropLast()) }
        return pieces.map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { $0.split(separator: " ").count >= minWords }
    }

    /// `text` with its wrapped lines joined by spaces; the line breaks that remain end a block.
    static func unwrapped(_ text: String) -> String {
        let lines = text.replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false)
        func isBlank(_ line: Substring) -> Bool { line.allSatisfy(\.isWhitespace) }
        func startsBlock(_ line: Substring) -> Bool {
            let t = line.drop(while: { $0 == " " || $0 == "\t" })
            if t.isEmpty || t.hasPrefix("#") || t.hasPrefix(">") || t.hasPrefix("|") || t.hasPrefix("```") { return true }
            if t.hasPrefix("- ") || t.hasPrefix("* ") || t.hasPrefix("+ ") { return true }
            let digits = t.prefix(while: \.isNumber), rest = t.dropFirst(digits.count)
            return !digits.isEmpty && (rest.hasPrefix(". ") || rest.hasPrefix(") "))
        }
        var out = ""
        for (n, line) in lines.enumerated() {
            if n > 0 {
                let previous = lines[n - 1]
                let hard = startsBlock(line) || isBlank(previous) || previous.drop(while: { $0 == " " }).hasPrefix("#")
                out += hard ? "\n" : " "
            }
            out += line
        }
        return out
    }

    /// The first sentence each of a window's `conversations` quotes: seeded permutations of the
    /// window's sentences one after another, so every sentence is quoted once before any is
    /// quoted twice (drawn independently, a third of them would not be quoted at all).
    public static func schedule(sentences: Int, conversations: Int, rng: inout SplitMix64) -> [Int] {
        guard sentences > 0 else { return [Int](repeating: 0, count: conversations) }
        var starts: [Int] = []
        while starts.count < conversations { starts += Array(0..<sentences).shuffled(using: &rng) }
        return Array(starts.prefix(conversations))
    }

    /// `count` consecutive sentences from `start`, at most `maxWords` words; the whole text (cut
    /// to `maxWords`) when it has no sentence long enough.
    public static func pick(from sentences: [String], fallback: String, start: Int, count: Int, maxWords: Int = 60) -> String {
        let text = sentences.isEmpty ? fallback : sentences[start..<min(sentences.count, start + count)].joined(separator: " ")
        let words = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        return words.prefix(maxWords).joined(separator: " ")
    }

    /// The first words of a sentence for a recall question: up to its last name or number when
    /// that leaves at least 3 words before it, else its first 60% of words (at least 3, and at
    /// least 2 words left to recall).
    public static func clozeHead(_ sentence: String) -> String {
        let words = sentence.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard words.count >= 5 else { return words.prefix(max(1, words.count - 1)).joined(separator: " ") }
        var cut = max(3, min(words.count - 2, Int((Double(words.count) * 0.6).rounded())))
        if let last = keyTerms(sentence).last, let first = last.split(separator: " ").first,
           let at = words.indices.last(where: { words[$0].contains(first) }), at >= 3 {
            cut = at
        }
        return words.prefix(cut).joined(separator: " ")
    }

    /// The names and numbers of a window's sentences, each once, in order of first mention.
    public static func keyTerms(of sentences: [String]) -> [String] {
        var terms: [String] = []
        for t in sentences.flatMap(keyTerms) where !terms.contains(t) { terms.append(t) }
        return terms
    }

    /// The names and numbers a text states, which are what factual questions ask for: runs of
    /// capitalized words that do not start a sentence ("Stephen Fry"), and words with a digit
    /// ("1871"). "I" and its contractions are not names.
    public static func keyTerms(_ text: String) -> [String] {
        var terms: [String] = [], run: [String] = []
        func flush() {
            if !run.isEmpty, !terms.contains(run.joined(separator: " ")) { terms.append(run.joined(separator: " ")) }
            run = []
        }
        var sentenceStart = true
        for raw in text.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
            let word = raw.trimmingCharacters(in: CharacterSet.punctuationCharacters.union(.symbols))
            let isPronoun = word == "I" || word.hasPrefix("I'") || word.hasPrefix("I\u{2019}")
            let isName = !sentenceStart && word.count > 1 && word.first!.isUppercase && !isPronoun
            if word.contains(where: \.isNumber) || isName { run.append(word) } else { flush() }
            // a clause ends a run: "Bic, Miquelrius" are two names
            if let last = raw.last, ",;:.?!)\"".contains(last) { flush() }
            sentenceStart = raw.last.map { ".?!".contains($0) } ?? false
        }
        flush()
        return terms
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
