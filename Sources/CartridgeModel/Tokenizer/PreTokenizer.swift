/// The `smollm` pre-tokenizer, as llama.cpp applies it: it cuts text into the pieces that BPE
/// then encodes one at a time.
///
/// It works in two steps:
/// 1. Every Unicode number character (`\p{N}`) becomes a piece of its own, so `"1984"` is
///    four pieces. The text between numbers forms chunks.
/// 2. Each chunk is split separately with the GPT-2 pattern
///    `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
///    Lookahead stops at the end of the chunk, so in `" \n1"` the whitespace run `" \n"` stays
///    one piece.
///
/// `\p{L}` is the general categories Lu Ll Lt Lm Lo, `\p{N}` is Nd Nl No and `\s` is the
/// Unicode `White_Space` property. The contractions are case-sensitive and need an ASCII `'`.
///
/// This is a hand-written scanner over Unicode scalars, equivalent to the regular expressions
/// above; it does not use `NSRegularExpression`.
public enum PreTokenizer {
    /// Splits `text` into its pieces. Joining the pieces gives back `text`.
    public static func split(_ text: String) -> [String] {
        let bytes = Array(text.utf8)
        var pieces: [String] = []
        bytes.withUnsafeBufferPointer { buffer in
            forEachPiece(in: buffer, range: 0..<buffer.count) { piece in
                pieces.append(String(decoding: UnsafeBufferPointer(rebasing: buffer[piece]), as: UTF8.self))
            }
        }
        return pieces
    }

    /// Calls `body` with the byte range of each piece of `bytes[range]`, in order.
    ///
    /// `bytes[range]` must be UTF-8 that starts and ends on scalar boundaries (text taken from a
    /// Swift `String` always is). Malformed input cannot crash the scanner; it just gives
    /// unspecified pieces.
    static func forEachPiece(in bytes: UnsafeBufferPointer<UInt8>, range: Range<Int>,
                             _ body: (Range<Int>) -> Void) {
        guard !range.isEmpty else { return }
        let scanner = Scanner(bytes: bytes, range: range)
        var index = 0
        while index < scanner.count {
            if scanner.classes[index] == .number {
                body(scanner.starts[index]..<scanner.starts[index + 1])
                index += 1
                continue
            }
            var end = index
            while end < scanner.count && scanner.classes[end] != .number { end += 1 }
            scanner.splitChunk(index..<end, body)
            index = end
        }
    }
}

/// How the GPT-2 pattern sees a scalar.
enum ScalarClass: UInt8 {
    /// Anything that is not a letter, number or whitespace: `[^\s\p{L}\p{N}]`.
    case other
    /// `\p{L}`
    case letter
    /// `\p{N}`
    case number
    /// `\s` (`White_Space`)
    case whitespace

    static func of(_ value: UInt32) -> ScalarClass {
        if value < 0x80 { return ascii[Int(value)] }
        return classify(value)
    }

    private static let ascii: [ScalarClass] = (0..<0x80).map { classify(UInt32($0)) }

    private static func classify(_ value: UInt32) -> ScalarClass {
        guard let scalar = Unicode.Scalar(value) else { return .other }
        let properties = scalar.properties
        if properties.isWhitespace { return .whitespace }
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return .letter
        case .decimalNumber, .letterNumber, .otherNumber:
            return .number
        default:
            return .other
        }
    }
}

/// The scalars of one stretch of UTF-8 text with their classes and byte offsets; splits
/// chunks of it with the GPT-2 pattern.
private struct Scanner {
    let bytes: UnsafeBufferPointer<UInt8>
    /// Class of each scalar.
    var classes: [ScalarClass] = []
    /// Byte offset of each scalar in `bytes`, plus the end offset of the stretch.
    var starts: [Int] = []
    var count: Int { classes.count }

    init(bytes: UnsafeBufferPointer<UInt8>, range: Range<Int>) {
        self.bytes = bytes
        classes.reserveCapacity(range.count)
        starts.reserveCapacity(range.count + 1)
        var offset = range.lowerBound
        while offset < range.upperBound {
            let (value, length) = Scanner.decodeScalar(bytes, at: offset, end: range.upperBound)
            classes.append(ScalarClass.of(value))
            starts.append(offset)
            offset += length
        }
        starts.append(range.upperBound)
    }

    /// Decodes the scalar at `offset`. Assumes well-formed UTF-8 but never reads past `end`.
    private static func decodeScalar(_ bytes: UnsafeBufferPointer<UInt8>, at offset: Int,
                                     end: Int) -> (value: UInt32, length: Int) {
        let lead = UInt32(bytes[offset])
        let length: Int
        var value: UInt32
        switch lead {
        case 0..<0x80: return (lead, 1)
        case 0xC0..<0xE0: length = 2; value = lead & 0x1F
        case 0xE0..<0xF0: length = 3; value = lead & 0x0F
        case 0xF0..<0xF8: length = 4; value = lead & 0x07
        default: return (0xFFFD, 1)
        }
        guard offset + length <= end else { return (0xFFFD, 1) }
        for k in 1..<length {
            value = value << 6 | (UInt32(bytes[offset + k]) & 0x3F)
        }
        return (value, length)
    }

    /// True if the scalar at `index` is the ASCII character `ascii`.
    private func isASCII(_ index: Int, _ ascii: UInt8) -> Bool {
        // A multi-byte scalar starts with a byte >= 0xC0, so comparing its first byte is enough.
        bytes[starts[index]] == ascii
    }

    /// Splits the scalars `chunk` with the GPT-2 pattern, reporting each piece's byte range.
    func splitChunk(_ chunk: Range<Int>, _ body: (Range<Int>) -> Void) {
        let end = chunk.upperBound
        var position = chunk.lowerBound
        func emit(upTo pieceEnd: Int) {
            body(starts[position]..<starts[pieceEnd])
            position = pieceEnd
        }
        let apostrophe = UInt8(ascii: "'")
        let space = UInt8(ascii: " ")

        while position < end {
            // 's|'t|'re|'ve|'m|'ll|'d
            if isASCII(position, apostrophe) && position + 1 < end {
                let next = bytes[starts[position + 1]]
                if next == UInt8(ascii: "s") || next == UInt8(ascii: "t")
                    || next == UInt8(ascii: "m") || next == UInt8(ascii: "d") {
                    emit(upTo: position + 2)
                    continue
                }
                if position + 2 < end {
                    let third = bytes[starts[position + 2]]
                    if (next == UInt8(ascii: "r") && third == UInt8(ascii: "e"))
                        || (next == UInt8(ascii: "v") && third == UInt8(ascii: "e"))
                        || (next == UInt8(ascii: "l") && third == UInt8(ascii: "l")) {
                        emit(upTo: position + 3)
                        continue
                    }
                }
            }

            // ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+': an optional space, then a run of
            // scalars of the class that follows it.
            let leadingSpace = isASCII(position, space)
            let runStart = leadingSpace ? position + 1 : position
            if runStart < end && classes[runStart] != .whitespace {
                let runClass = classes[runStart]
                var runEnd = runStart + 1
                while runEnd < end && classes[runEnd] == runClass { runEnd += 1 }
                emit(upTo: runEnd)
                continue
            }

            // '\s+(?!\S)': a whitespace run followed by a non-space keeps its last scalar for
            // the next piece; at the end of the chunk it is all one piece ('\s+').
            var whitespaceEnd = position
            while whitespaceEnd < end && classes[whitespaceEnd] == .whitespace { whitespaceEnd += 1 }
            if whitespaceEnd - position > 1 && whitespaceEnd < end {
                emit(upTo: whitespaceEnd - 1)
            } else if whitespaceEnd > position {
                emit(upTo: whitespaceEnd)
            } else {
                emit(upTo: position + 1)  // Not reachable: every class is handled above.
            }
        }
    }
}
