// The words of a retrieval passage, stored for lexical scoring (see docs/cart-format.md, `terms`).

/// The words of a retrieval passage as a sparse bag: each distinct word's id and how often it
/// occurs. A word is a maximal run of Unicode letters and digits, lower-cased and reduced by
/// `stem` (plural endings); its id is the 32-bit FNV-1a hash of its UTF-8 bytes. The
/// passage text itself is not kept.
public struct PassageTerms: Codable, Sendable, Equatable {
    /// Ids of the distinct words, strictly ascending.
    public var ids: [UInt32]
    /// How often each word occurs (at least once), in the order of `ids`.
    public var counts: [Int]

    public init(ids: [UInt32], counts: [Int]) {
        self.ids = ids
        self.counts = counts
    }

    /// The bag of words of a text.
    public init(text: String) {
        var bag: [UInt32: Int] = [:]
        for word in Self.words(text) { bag[Self.id(of: word), default: 0] += 1 }
        ids = bag.keys.sorted()
        counts = ids.map { bag[$0]! }
    }

    /// Number of words in the passage (repeats included).
    public var wordCount: Int { counts.reduce(0, +) }

    /// The words of a text, in order: maximal runs of letters and digits, lower-cased, each
    /// through `stem`.
    public static func words(_ text: String) -> [String] {
        var words: [String] = []
        var current = String.UnicodeScalarView()
        for scalar in text.lowercased().unicodeScalars {
            if scalar.properties.isAlphabetic || scalar.properties.numericType != nil {
                current.append(scalar)
            } else if !current.isEmpty {
                words.append(stem(String(current)))
                current = String.UnicodeScalarView()
            }
        }
        if !current.isEmpty { words.append(stem(String(current))) }
        return words
    }

    /// Harman's S-stemmer (1991) as Lucene's `EnglishMinimalStemmer` has it: words shorter than 3
    /// letters or not ending in "s" stay; "-us" and "-ss" stay; "-ies" becomes "-y" unless after
    /// "a" or "e" (or the word is "ies"); "-aes", "-ees", "-ies", "-oes" stay; otherwise the final
    /// "s" goes ("notebooks" → "notebook", "companies" → "company", "does" stays).
    public static func stem(_ word: String) -> String {
        let c = Array(word)
        let n = c.count
        guard n >= 3, c[n - 1] == "s" else { return word }
        switch c[n - 2] {
        case "u", "s":
            return word
        case "e":
            if n > 3 && c[n - 3] == "i" && c[n - 4] != "a" && c[n - 4] != "e" { return String(c[..<(n - 3)]) + "y" }
            if "iaoe".contains(c[n - 3]) { return word }
            return String(c[..<(n - 1)])
        default:
            return String(c[..<(n - 1)])
        }
    }

    /// The id of a word: 32-bit FNV-1a over its UTF-8 bytes.
    public static func id(of word: String) -> UInt32 {
        var h: UInt32 = 0x811C_9DC5
        for b in word.utf8 {
            h ^= UInt32(b)
            h = h &* 0x0100_0193
        }
        return h
    }

    /// Why the bag is malformed, or nil when it is sound.
    func problem() -> String? {
        if ids.count != counts.count { return "has \(ids.count) ids but \(counts.count) counts" }
        if zip(ids, ids.dropFirst()).contains(where: { $0 >= $1 }) { return "ids are not strictly ascending" }
        if let c = counts.first(where: { $0 < 1 }) { return "has a count of \(c); every count must be at least 1" }
        return nil
    }
}
