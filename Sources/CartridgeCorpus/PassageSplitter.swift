import CartridgeKernels
/// A piece of a document: its UTF-8 byte range and text.
public struct Passage: Sendable, Equatable {
    public var start: Int
    public var end: Int
    public var text: String
}

/// Splits text into retrieval passages of about `words` whitespace-separated words, each starting
/// `words - overlap` words after the one before (the embedder reads at most 256 word pieces, about
/// 180 English words). Passages of 60 words find the passage a question is about better than
/// 120 (docs/quality.md).
public enum PassageSplitter {
    public static func passages(_ text: String, words: Int = 60, overlap: Int = 20) -> [Passage] {
        invariant(words > overlap && overlap >= 0)
        let bytes = Array(text.utf8)
        // word spans by UTF-8 offsets (ASCII whitespace separates words)
        var spans: [(Int, Int)] = []
        var i = 0
        while i < bytes.count {
            while i < bytes.count, isSpace(bytes[i]) { i += 1 }
            let s = i
            while i < bytes.count, !isSpace(bytes[i]) { i += 1 }
            if i > s { spans.append((s, i)) }
        }
        var out: [Passage] = []
        var w = 0
        while w < spans.count {
            let last = min(spans.count, w + words) - 1
            let (s, e) = (spans[w].0, spans[last].1)
            out.append(Passage(start: s, end: e, text: String(decoding: bytes[s..<e], as: UTF8.self)))
            if last == spans.count - 1 { break }
            w += words - overlap
        }
        return out
    }

    private static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 || b == 0x0C || b == 0x0B }
}
