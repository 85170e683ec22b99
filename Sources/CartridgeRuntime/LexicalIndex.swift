import CartridgeFormat
import Foundation

/// Okapi BM25 over the words of passages (`PassageTerms`), with the usual constants k1 = 1.2 and
/// b = 0.75. Document frequencies and the mean passage length count every passage added that
/// carries words, so a word's weight reflects the whole library: a word found in most passages
/// counts little, a rare one much. Passages without words (cartridges written before words were
/// stored) take part with a score of 0 and do not count.
public struct LexicalIndex: Sendable {
    /// Term-frequency saturation: a word's contribution approaches (k1 + 1) · idf as it repeats.
    public static let k1: Float = 1.2
    /// Length normalization: 0 ignores passage length, 1 divides by it relative to the mean.
    public static let b: Float = 0.75

    private struct Posting: Sendable {
        var passage: Int32
        var count: Float
    }

    /// word id -> passages holding it, in the order they were added
    private var postings: [UInt32: [Posting]] = [:]
    /// words of each passage (0 for one without words)
    private var lengths: [Float] = []
    /// passages that carry words
    public private(set) var passagesWithWords = 0
    private var totalWords = 0

    public init() {}

    /// Number of passages added.
    public var passageCount: Int { lengths.count }

    /// Appends passages; they are numbered on from `passageCount`.
    public mutating func add(_ passages: [PassageTerms?]) {
        for terms in passages {
            let p = Int32(lengths.count)
            guard let terms else {
                lengths.append(0)
                continue
            }
            for (id, count) in zip(terms.ids, terms.counts) { postings[id, default: []].append(Posting(passage: p, count: Float(count))) }
            lengths.append(Float(terms.wordCount))
            passagesWithWords += 1
            totalWords += terms.wordCount
        }
    }

    /// Inverse document frequency of a word found in `df` of `n` passages:
    /// ln(1 + (n - df + 0.5) / (df + 0.5)), positive however common the word.
    public static func idf(df: Int, n: Int) -> Float {
        log(1 + (Float(n - df) + 0.5) / (Float(df) + 0.5))
    }

    /// The BM25 score of every passage for a query's word ids (each distinct id counted once; 0
    /// where none occurs).
    public func scores(_ query: [UInt32]) -> [Float] {
        var s = [Float](repeating: 0, count: lengths.count)
        guard passagesWithWords > 0 else { return s }
        let meanLength = Float(totalWords) / Float(passagesWithWords)
        let k1 = Self.k1, b = Self.b
        for id in Set(query).sorted() {  // a fixed order: the same sums, so the same ranking, every run
            guard let list = postings[id] else { continue }
            let idf = Self.idf(df: list.count, n: passagesWithWords)
            for posting in list {
                let p = Int(posting.passage), tf = posting.count
                s[p] += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * lengths[p] / meanLength))
            }
        }
        return s
    }
}
