import Foundation

/// Why a WordPiece vocabulary could not be loaded.
public enum WordPieceError: Error, CustomStringConvertible, Equatable {
    case cannotRead(path: String, reason: String)
    case emptyVocabulary(path: String)
    case missingSpecialToken(path: String, token: String)
    case invalidMaxLength(Int)

    public var description: String {
        switch self {
        case let .cannotRead(path, reason): return "cannot read the WordPiece vocabulary \(path): \(reason)"
        case let .emptyVocabulary(path): return "the WordPiece vocabulary \(path) is empty"
        case let .missingSpecialToken(path, token):
            return "the WordPiece vocabulary \(path) has no \(token) token; it is not a BERT vocabulary"
        case let .invalidMaxLength(n): return "a WordPiece max length of \(n) leaves no room for [CLS] and [SEP] (need at least 2)"
        }
    }
}

/// BERT's tokenizer: the basic tokenizer (text cleaning, CJK splitting, lower-casing, accent
/// stripping, whitespace and punctuation splitting) followed by greedy longest-match-first WordPiece,
/// as the `tokenizers` library's `BertNormalizer` + `BertPreTokenizer` + `WordPiece` do it.
///
/// Details that matter for exact ids:
/// - The special tokens `[PAD] [UNK] [CLS] [SEP] [MASK]` written in the raw text are matched first,
///   case-sensitively, and become their own ids.
/// - Character classes (control, punctuation, non-spacing mark) follow Unicode 8.0, the tables the
///   reference `tokenizers` library uses: characters assigned later are neither removed, split off
///   nor stripped. Unassigned code points are kept (and end up as `[UNK]`).
/// - A word of more than 100 characters (Unicode scalars, after normalization), or one WordPiece
///   cannot cover, becomes a single `[UNK]`.
public struct WordPieceTokenizer: Sendable {
    /// Token strings by id.
    public let vocabulary: [String]
    /// id of `[UNK]`, `[CLS]`, `[SEP]`.
    public let unknownID: Int
    public let classID: Int
    public let separatorID: Int
    /// Most ids `encode` returns, `[CLS]` and `[SEP]` included.
    public let maxLength: Int
    /// Lower-case and strip accents (the "uncased" models).
    public let lowercase: Bool
    /// Longer words become `[UNK]`.
    public let maxCharactersPerWord = 100

    /// UTF-8 bytes of a token (with `##` for continuations) -> id. Bytes rather than `String`
    /// keys, because `String` equality is canonical equivalence and WordPiece matches exact scalars.
    private let ids: [[UInt8]: Int]
    /// Special tokens matched in the raw text, as scalars, with their ids.
    private let specials: [([Unicode.Scalar], Int)]

    /// Reads `vocab.txt` (one token per line; the line number is the id).
    public init(vocabularyURL url: URL, maxLength: Int, lowercase: Bool = true) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw WordPieceError.cannotRead(path: url.path, reason: error.localizedDescription)
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw WordPieceError.cannotRead(path: url.path, reason: "it is not valid UTF-8")
        }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            line.hasSuffix("\r") ? String(line.dropLast()) : String(line)
        }
        if lines.last == "" { lines.removeLast() }
        try self.init(tokens: lines, maxLength: maxLength, lowercase: lowercase, source: url.path)
    }

    /// A tokenizer over an in-memory vocabulary (`tokens[id]`).
    public init(tokens: [String], maxLength: Int, lowercase: Bool = true, source: String = "<memory>") throws {
        guard !tokens.isEmpty else { throw WordPieceError.emptyVocabulary(path: source) }
        guard maxLength >= 2 else { throw WordPieceError.invalidMaxLength(maxLength) }
        var ids: [[UInt8]: Int] = [:]
        for (id, token) in tokens.enumerated() { ids[Array(token.utf8)] = id }  // a repeated token keeps its last id
        func special(_ token: String) throws -> Int {
            guard let id = ids[Array(token.utf8)] else { throw WordPieceError.missingSpecialToken(path: source, token: token) }
            return id
        }
        vocabulary = tokens
        self.ids = ids
        unknownID = try special("[UNK]")
        classID = try special("[CLS]")
        separatorID = try special("[SEP]")
        self.maxLength = maxLength
        self.lowercase = lowercase
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"].compactMap { token in
            ids[Array(token.utf8)].map { (Array(token.unicodeScalars), $0) }
        }
    }

    /// `[CLS]`, the ids of `text` cut to `maxLength - 2`, `[SEP]`.
    public func encode(_ text: String) -> [Int] {
        [classID] + tokenize(text, limit: maxLength - 2) + [separatorID]
    }

    /// The WordPiece ids of `text`, without `[CLS]`/`[SEP]`, stopping after `limit` ids.
    public func tokenize(_ text: String, limit: Int = .max) -> [Int] {
        var out: [Int] = []
        for segment in splitOnSpecialTokens(text) {
            if out.count >= limit { break }
            switch segment {
            case let .special(id): out.append(id)
            case let .text(scalars):
                for word in Self.preTokenize(normalize(scalars)) {
                    if out.count >= limit { break }
                    out += wordPiece(word)
                }
            }
        }
        return Array(out.prefix(max(0, limit)))
    }

    /// The tokens of `ids` (for display and tests); out-of-range ids read as `[UNK]`.
    public func tokens(_ ids: [Int]) -> [String] {
        ids.map { vocabulary.indices.contains($0) ? vocabulary[$0] : "[UNK]" }
    }

    // MARK: - Special tokens

    enum Segment: Equatable {
        case text([Unicode.Scalar])
        case special(Int)
    }

    /// Splits the raw text around the special tokens it spells out.
    func splitOnSpecialTokens(_ text: String) -> [Segment] {
        let scalars = Array(text.unicodeScalars)
        var segments: [Segment] = []
        var pending: [Unicode.Scalar] = []
        var i = 0
        outer: while i < scalars.count {
            if scalars[i] == "[" {
                for (token, id) in specials where i + token.count <= scalars.count && Array(scalars[i..<(i + token.count)]) == token {
                    if !pending.isEmpty { segments.append(.text(pending)); pending = [] }
                    segments.append(.special(id))
                    i += token.count
                    continue outer
                }
            }
            pending.append(scalars[i])
            i += 1
        }
        if !pending.isEmpty { segments.append(.text(pending)) }
        return segments
    }

    // MARK: - Normalization (BertNormalizer)

    /// Cleans (drops NUL, U+FFFD and control characters, maps whitespace to a space), puts spaces
    /// around CJK ideographs, lower-cases, then decomposes (NFD) and drops non-spacing marks.
    func normalize(_ scalars: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var cleaned = String.UnicodeScalarView()
        for c in scalars {
            if c.value == 0 || c.value == 0xFFFD || Self.isControl(c) { continue }
            if Self.isWhitespace(c) { cleaned.append(" "); continue }
            if Self.isCJK(c) {
                cleaned.append(" "); cleaned.append(c); cleaned.append(" ")
                continue
            }
            cleaned.append(c)
        }
        guard lowercase else { return Array(cleaned) }
        var lowered = String.UnicodeScalarView()
        for c in cleaned { lowered.append(contentsOf: c.properties.lowercaseMapping.unicodeScalars) }
        let decomposed = String(lowered).decomposedStringWithCanonicalMapping
        return decomposed.unicodeScalars.filter { !Self.isNonSpacingMark($0) }
    }

    /// Whether a scalar's category is known to Unicode 8.0 (the reference tables' version).
    static func inUnicode8(_ c: Unicode.Scalar) -> Bool {
        guard let age = c.properties.age else { return false }
        return age.major < 8 || (age.major == 8 && age.minor == 0)
    }

    /// Control, format or private-use characters other than tab, newline and carriage return.
    static func isControl(_ c: Unicode.Scalar) -> Bool {
        if c == "\t" || c == "\n" || c == "\r" { return false }
        switch c.properties.generalCategory {
        case .control, .format, .privateUse, .surrogate: return inUnicode8(c)
        default: return false
        }
    }

    static func isWhitespace(_ c: Unicode.Scalar) -> Bool {
        c == "\t" || c == "\n" || c == "\r" || c.properties.isWhitespace
    }

    static func isNonSpacingMark(_ c: Unicode.Scalar) -> Bool {
        c.properties.generalCategory == .nonspacingMark && inUnicode8(c)
    }

    /// ASCII punctuation (which includes symbols such as `$`, `+`, `^`, `` ` ``) or a Unicode P* character.
    static func isPunctuation(_ c: Unicode.Scalar) -> Bool {
        let v = c.value
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) { return true }
        switch c.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return inUnicode8(c)
        default: return false
        }
    }

    /// The CJK Unified Ideographs blocks BERT splits into single characters (the ranges of the
    /// `tokenizers` library, whose Extension-E range starts at U+2B920).
    static func isCJK(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F,
             0x2B740...0x2B81F, 0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default: return false
        }
    }

    // MARK: - Pre-tokenization (BertPreTokenizer)

    /// Splits on whitespace (dropped) and around every punctuation character (kept as its own word).
    static func preTokenize(_ scalars: [Unicode.Scalar]) -> [[Unicode.Scalar]] {
        var words: [[Unicode.Scalar]] = []
        var current: [Unicode.Scalar] = []
        for c in scalars {
            if isWhitespace(c) {
                if !current.isEmpty { words.append(current); current = [] }
            } else if isPunctuation(c) {
                if !current.isEmpty { words.append(current); current = [] }
                words.append([c])
            } else {
                current.append(c)
            }
        }
        if !current.isEmpty { words.append(current) }
        return words
    }

    // MARK: - WordPiece

    /// Greedy longest-match-first: the longest vocabulary prefix, then the longest `##` piece of the
    /// rest, and so on; the whole word is `[UNK]` if some position has no match.
    func wordPiece(_ word: [Unicode.Scalar]) -> [Int] {
        if word.count > maxCharactersPerWord { return [unknownID] }
        // offsets[i]: UTF-8 byte offset of scalar i (offsets[count] = total bytes)
        var utf8: [UInt8] = []
        var offsets: [Int] = [0]
        for c in word {
            utf8.append(contentsOf: String(c).utf8)
            offsets.append(utf8.count)
        }
        let continuation: [UInt8] = Array("##".utf8)
        var pieces: [Int] = []
        var start = 0
        while start < word.count {
            var end = word.count
            var match: Int?
            while end > start {
                let bytes = utf8[offsets[start]..<offsets[end]]
                if let id = ids[start > 0 ? continuation + bytes : Array(bytes)] {
                    match = id
                    break
                }
                end -= 1
            }
            guard let id = match else { return [unknownID] }
            pieces.append(id)
            start = end
        }
        return pieces
    }
}
