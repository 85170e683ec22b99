/// Why a tokenizer could not be built from a vocabulary. Every case says which entry is at fault.
public enum TokenizerError: Error, CustomStringConvertible, Equatable, Sendable {
    case emptyVocabulary
    case vocabularyTooLarge(count: Int)
    case tokenTypeCountMismatch(tokens: Int, types: Int)
    case malformedMerge(index: Int, merge: String)
    case mergeTokenNotInVocabulary(index: Int, merge: String, token: String)
    case mergeResultNotInVocabulary(index: Int, merge: String, result: String)
    case specialTokenOutOfRange(name: String, id: Int, vocabularySize: Int)

    public var description: String {
        switch self {
        case .emptyVocabulary:
            return "the tokenizer vocabulary (tokenizer.ggml.tokens) is empty"
        case let .vocabularyTooLarge(count):
            return "the tokenizer vocabulary has \(count) tokens, more than the supported \(Int32.max)"
        case let .tokenTypeCountMismatch(tokens, types):
            return "tokenizer.ggml.token_type has \(types) entries but tokenizer.ggml.tokens has \(tokens); they must have one entry per token"
        case let .malformedMerge(index, merge):
            return "merge \(index) '\(merge)' in tokenizer.ggml.merges is not of the form 'left right'"
        case let .mergeTokenNotInVocabulary(index, merge, token):
            return "merge \(index) '\(merge)' in tokenizer.ggml.merges names '\(token)', which is not in the vocabulary"
        case let .mergeResultNotInVocabulary(index, merge, result):
            return "merge \(index) '\(merge)' in tokenizer.ggml.merges produces '\(result)', which is not in the vocabulary"
        case let .specialTokenOutOfRange(name, id, size):
            return "the \(name) token id \(id) is outside the vocabulary (0..<\(size))"
        }
    }
}

/// A byte-level BPE tokenizer (GGUF tokenizer model `gpt2`) with the `smollm` pre-tokenizer,
/// matching llama.cpp's tokenization exactly.
///
/// Encoding: text is cut into pieces by `PreTokenizer`, each piece's UTF-8 bytes start as one
/// symbol per byte (in GPT-2's byte-level alphabet, see `ByteLevel`), and the adjacent pair
/// with the lowest merge rank is merged (leftmost first among equal ranks) until no pair has a
/// merge. A BOS token is never added.
///
/// Immutable after `init`, so one instance can be shared by any number of threads.
public final class Tokenizer: Sendable {
    /// GGUF `tokenizer.ggml.token_type` value of a control token such as `<|im_end|>`.
    public static let controlType: Int32 = 3
    /// GGUF `tokenizer.ggml.token_type` value of a user-defined token.
    public static let userDefinedType: Int32 = 4

    /// Id of the beginning-of-sequence token, if the model has one. `encode` never adds it.
    public let bosID: Int?
    /// Id of the end-of-sequence token, if the model has one.
    public let eosID: Int?
    /// The tokenizer hash: a stable 64-bit FNV-1a digest, as 16 lowercase hex digits, of the
    /// token strings, token types and merges. Two tokenizers with the same fingerprint tokenize
    /// identically; use it to check that saved token ids belong to the vocabulary at hand.
    ///
    /// The hashed bytes are, with every count and length as a little-endian UInt64: the token
    /// count; for each token its UTF-8 length, its UTF-8 bytes and its type (as UInt64); the
    /// merge count; for each merge its UTF-8 length and UTF-8 bytes.
    public let fingerprint: String

    private let tokens: [String]
    private let types: [Int32]
    private let idsByToken: [String: Int32]
    /// Token id of the byte-level symbol of each byte, or -1 if the vocabulary lacks it.
    private let byteSymbolIDs: [Int32]
    /// `(left id << 32 | right id)` → `(rank << 32 | merged id)`.
    private let merges: [UInt64: UInt64]
    /// Decoded bytes of every token, concatenated; token `i` is
    /// `decodedBytes[decodedStarts[i]..<decodedStarts[i + 1]]`.
    private let decodedBytes: [UInt8]
    private let decodedStarts: [Int]
    /// Control and user-defined tokens, longest first (ties: lower id first).
    private let specialTokens: [SpecialToken]

    private struct SpecialToken {
        let id: Int32
        let bytes: [UInt8]
    }

    /// Builds a tokenizer from the arrays stored in a GGUF file.
    ///
    /// - Parameters:
    ///   - tokens: `tokenizer.ggml.tokens`, in GPT-2's byte-level alphabet (`Ġ` for a space).
    ///   - merges: `tokenizer.ggml.merges`, `"left right"` strings, highest priority first.
    ///   - tokenTypes: `tokenizer.ggml.token_type`, one per token (1 normal, 2 unknown,
    ///     3 control, 4 user-defined, 5 unused, 6 byte).
    ///   - bosID: `tokenizer.ggml.bos_token_id`, if present.
    ///   - eosID: `tokenizer.ggml.eos_token_id`, if present.
    /// - Throws: `TokenizerError` if the arrays are inconsistent, e.g. a merge names a token
    ///   that is not in the vocabulary.
    public init(tokens: [String], merges: [String], tokenTypes: [Int32], bosID: Int?, eosID: Int?) throws {
        guard !tokens.isEmpty else { throw TokenizerError.emptyVocabulary }
        guard tokens.count < Int(Int32.max) else { throw TokenizerError.vocabularyTooLarge(count: tokens.count) }
        guard tokenTypes.count == tokens.count else {
            throw TokenizerError.tokenTypeCountMismatch(tokens: tokens.count, types: tokenTypes.count)
        }
        for (name, id) in [("BOS", bosID), ("EOS", eosID)] {
            if let id, !(0..<tokens.count).contains(id) {
                throw TokenizerError.specialTokenOutOfRange(name: name, id: id, vocabularySize: tokens.count)
            }
        }

        // As in llama.cpp, a duplicated token string maps to its last id.
        var idsByToken: [String: Int32] = [:]
        idsByToken.reserveCapacity(tokens.count)
        for (id, token) in tokens.enumerated() {
            idsByToken[token] = Int32(id)
        }

        var byteSymbolIDs = [Int32](repeating: -1, count: 256)
        for byte in 0..<256 {
            if let scalar = Unicode.Scalar(ByteLevel.scalarValue[byte]),
               let id = idsByToken[String(Character(scalar))] {
                byteSymbolIDs[byte] = id
            }
        }

        var mergeTable: [UInt64: UInt64] = [:]
        mergeTable.reserveCapacity(merges.count)
        for (rank, merge) in merges.enumerated() {
            let (left, right) = try Tokenizer.parseMerge(merge, index: rank)
            guard let leftID = idsByToken[left] else {
                throw TokenizerError.mergeTokenNotInVocabulary(index: rank, merge: merge, token: left)
            }
            guard let rightID = idsByToken[right] else {
                throw TokenizerError.mergeTokenNotInVocabulary(index: rank, merge: merge, token: right)
            }
            guard let mergedID = idsByToken[left + right] else {
                throw TokenizerError.mergeResultNotInVocabulary(index: rank, merge: merge, result: left + right)
            }
            let key = Tokenizer.pairKey(leftID, rightID)
            // A repeated merge keeps its first (highest-priority) rank.
            if mergeTable[key] == nil {
                mergeTable[key] = UInt64(rank) << 32 | UInt64(UInt32(bitPattern: mergedID))
            }
        }

        var decodedBytes: [UInt8] = []
        var decodedStarts: [Int] = [0]
        decodedStarts.reserveCapacity(tokens.count + 1)
        for (id, token) in tokens.enumerated() {
            Tokenizer.appendDecoded(token, type: tokenTypes[id], to: &decodedBytes)
            decodedStarts.append(decodedBytes.count)
        }

        var specialTokens: [SpecialToken] = []
        for (id, token) in tokens.enumerated()
        where (tokenTypes[id] == Tokenizer.controlType || tokenTypes[id] == Tokenizer.userDefinedType) && !token.isEmpty {
            specialTokens.append(SpecialToken(id: Int32(id), bytes: Array(token.utf8)))
        }
        specialTokens.sort { $0.bytes.count != $1.bytes.count ? $0.bytes.count > $1.bytes.count : $0.id < $1.id }

        self.tokens = tokens
        self.types = tokenTypes
        self.idsByToken = idsByToken
        self.byteSymbolIDs = byteSymbolIDs
        self.merges = mergeTable
        self.decodedBytes = decodedBytes
        self.decodedStarts = decodedStarts
        self.specialTokens = specialTokens
        self.bosID = bosID
        self.eosID = eosID
        self.fingerprint = Tokenizer.computeFingerprint(tokens: tokens, types: tokenTypes, merges: merges)
    }

    // MARK: - Vocabulary

    /// Number of tokens in the vocabulary; valid ids are `0..<vocabularySize`.
    public var vocabularySize: Int { tokens.count }

    /// The id of the token whose stored (byte-level) string is `token`, e.g. `"Ġthe"` or
    /// `"<|im_end|>"`.
    public func id(forToken token: String) -> Int? {
        idsByToken[token].map(Int.init)
    }

    /// The stored (byte-level) string of token `id`, or nil if `id` is out of range.
    public func tokenString(_ id: Int) -> String? {
        tokens.indices.contains(id) ? tokens[id] : nil
    }

    /// True if `id` is a control token (GGUF token type 3), e.g. `<|im_start|>`.
    public func isControl(_ id: Int) -> Bool {
        types.indices.contains(id) && types[id] == Tokenizer.controlType
    }

    // MARK: - Encoding

    /// Tokenizes `text`. No BOS token is added.
    ///
    /// - Parameter parseSpecial: if true, the strings of control and user-defined tokens
    ///   (e.g. `<|im_start|>`) are found in the text first, longest token first, and each
    ///   occurrence becomes that single token; the text between them is tokenized normally.
    ///   If false, such strings are ordinary text.
    public func encode(_ text: String, parseSpecial: Bool) -> [Int] {
        let bytes = Array(text.utf8)
        var output: [Int] = []
        output.reserveCapacity(bytes.count / 4 + 1)
        var session = EncodingSession()
        bytes.withUnsafeBufferPointer { buffer in
            for fragment in partition(buffer, parseSpecial: parseSpecial) {
                switch fragment {
                case let .special(id):
                    output.append(Int(id))
                case let .text(range):
                    PreTokenizer.forEachPiece(in: buffer, range: range) { piece in
                        encodePiece(UnsafeBufferPointer(rebasing: buffer[piece]), session: &session, into: &output)
                    }
                }
            }
        }
        return output
    }

    private enum Fragment {
        case special(Int32)
        case text(Range<Int>)
    }

    /// Cuts the text into special tokens and the text between them, the way llama.cpp does:
    /// each special token in turn, longest first, is searched for (left to right) in the text
    /// fragments that remain.
    private func partition(_ bytes: UnsafeBufferPointer<UInt8>, parseSpecial: Bool) -> [Fragment] {
        guard !bytes.isEmpty else { return [] }
        var fragments: [Fragment] = [.text(0..<bytes.count)]
        guard parseSpecial else { return fragments }
        for special in specialTokens {
            var result: [Fragment] = []
            var changed = false
            for fragment in fragments {
                guard case let .text(range) = fragment else {
                    result.append(fragment)
                    continue
                }
                var start = range.lowerBound
                while let match = Tokenizer.find(special.bytes, in: bytes, from: start, to: range.upperBound) {
                    if match > start { result.append(.text(start..<match)) }
                    result.append(.special(special.id))
                    start = match + special.bytes.count
                    changed = true
                }
                if start < range.upperBound { result.append(.text(start..<range.upperBound)) }
            }
            if changed { fragments = result }
        }
        return fragments
    }

    /// Offset of the first occurrence of `needle` in `haystack[from..<to]`, if any.
    private static func find(_ needle: [UInt8], in haystack: UnsafeBufferPointer<UInt8>, from: Int, to: Int) -> Int? {
        guard let first = needle.first, to - from >= needle.count else { return nil }
        let lastStart = to - needle.count
        var position = from
        while position <= lastStart {
            if haystack[position] == first {
                var k = 1
                while k < needle.count && haystack[position + k] == needle[k] { k += 1 }
                if k == needle.count { return position }
            }
            position += 1
        }
        return nil
    }

    /// Per-call state of `encode`: the piece cache and reusable BPE buffers.
    private struct EncodingSession {
        var cache: [[UInt8]: [Int32]] = [:]
        var symbols: [Int32] = []
        var next: [Int] = []
        var previous: [Int] = []
        var heap = MinHeap()

        /// Keeps memory bounded on very large inputs with many distinct pieces.
        static let cacheLimit = 200_000
    }

    private func encodePiece(_ piece: UnsafeBufferPointer<UInt8>, session: inout EncodingSession,
                             into output: inout [Int]) {
        if piece.count == 1 {
            let id = byteSymbolIDs[Int(piece[0])]
            if id >= 0 { output.append(Int(id)) }
            return
        }
        let key = Array(piece)
        if let cached = session.cache[key] {
            for id in cached { output.append(Int(id)) }
            return
        }
        let ids = bytePairEncode(piece, session: &session)
        for id in ids { output.append(Int(id)) }
        if session.cache.count >= EncodingSession.cacheLimit { session.cache.removeAll(keepingCapacity: true) }
        session.cache[key] = ids
    }

    /// Byte-pair-encodes one piece: repeatedly merges the adjacent pair with the lowest rank
    /// (leftmost first among equal ranks).
    private func bytePairEncode(_ piece: UnsafeBufferPointer<UInt8>, session: inout EncodingSession) -> [Int32] {
        let count = piece.count
        let dead: Int32 = -2
        session.symbols.removeAll(keepingCapacity: true)
        session.next.removeAll(keepingCapacity: true)
        session.previous.removeAll(keepingCapacity: true)
        session.heap.removeAll()
        for (index, byte) in piece.enumerated() {
            session.symbols.append(byteSymbolIDs[Int(byte)])
            session.next.append(index + 1)
            session.previous.append(index - 1)
        }
        for index in 0..<(count - 1) {
            if let merge = merges[Tokenizer.pairKey(session.symbols[index], session.symbols[index + 1])] {
                session.heap.push(merge & 0xFFFF_FFFF_0000_0000 | UInt64(index))
            }
        }
        while let entry = session.heap.popMin() {
            let rank = entry >> 32
            let left = Int(entry & 0xFFFF_FFFF)
            let right = session.next[left]
            // Skip entries made stale by earlier merges.
            guard session.symbols[left] != dead, right < count,
                  let merge = merges[Tokenizer.pairKey(session.symbols[left], session.symbols[right])],
                  merge >> 32 == rank
            else { continue }
            session.symbols[left] = Int32(truncatingIfNeeded: merge & 0xFFFF_FFFF)
            session.symbols[right] = dead
            let after = session.next[right]
            session.next[left] = after
            if after < count { session.previous[after] = left }
            let before = session.previous[left]
            if before >= 0,
               let merge = merges[Tokenizer.pairKey(session.symbols[before], session.symbols[left])] {
                session.heap.push(merge & 0xFFFF_FFFF_0000_0000 | UInt64(before))
            }
            if after < count,
               let merge = merges[Tokenizer.pairKey(session.symbols[left], session.symbols[after])] {
                session.heap.push(merge & 0xFFFF_FFFF_0000_0000 | UInt64(left))
            }
        }
        var result: [Int32] = []
        var index = 0
        while index < count {
            // -1: a byte whose symbol the vocabulary lacks; like llama.cpp, it is dropped.
            if session.symbols[index] >= 0 { result.append(session.symbols[index]) }
            index = session.next[index]
        }
        return result
    }

    private static func pairKey(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    private static func parseMerge(_ merge: String, index: Int) throws -> (String, String) {
        // As in llama.cpp, split at the first space after the first character.
        let scalars = merge.unicodeScalars
        guard let space = scalars.dropFirst().firstIndex(of: " ") else {
            throw TokenizerError.malformedMerge(index: index, merge: merge)
        }
        let left = String(scalars[..<space])
        let right = String(scalars[scalars.index(after: space)...])
        guard !right.isEmpty else { throw TokenizerError.malformedMerge(index: index, merge: merge) }
        return (left, right)
    }

    // MARK: - Decoding

    /// The bytes that `ids` stand for. Control and user-defined tokens give their own text
    /// (e.g. `<|im_end|>`); ids outside the vocabulary are skipped.
    public func decodeBytes(_ ids: [Int]) -> [UInt8] {
        var bytes: [UInt8] = []
        for id in ids {
            appendBytes(of: id, to: &bytes)
        }
        return bytes
    }

    /// The text that `ids` stand for; invalid UTF-8 becomes U+FFFD.
    public func decode(_ ids: [Int]) -> String {
        String(decoding: decodeBytes(ids), as: UTF8.self)
    }

    /// A decoder for tokens that arrive one at a time, e.g. during generation.
    public func streamingDecoder() -> StreamingDecoder {
        StreamingDecoder(tokenizer: self)
    }

    fileprivate func appendBytes(of id: Int, to bytes: inout [UInt8]) {
        guard id >= 0 && id < tokens.count else { return }
        bytes.append(contentsOf: decodedBytes[decodedStarts[id]..<decodedStarts[id + 1]])
    }

    /// Appends what token `token` of type `type` decodes to, as llama.cpp does: byte-level
    /// text for normal tokens, the raw text for control, user-defined and unknown tokens, the
    /// byte itself for `<0xHH>` byte tokens, nothing for unused tokens.
    private static func appendDecoded(_ token: String, type: Int32, to bytes: inout [UInt8]) {
        switch type {
        case 2, 3, 4:
            bytes.append(contentsOf: token.utf8)
        case 5:
            break
        case 6:
            if let byte = parseByteToken(token) {
                bytes.append(byte)
            } else {
                bytes.append(contentsOf: token.utf8)
            }
        default:
            for scalar in token.unicodeScalars {
                if let byte = ByteLevel.byte(for: scalar) {
                    bytes.append(byte)
                } else {
                    bytes.append(contentsOf: String(Character(scalar)).utf8)
                }
            }
        }
    }

    /// The byte of a byte token written `<0xHH>`.
    private static func parseByteToken(_ token: String) -> UInt8? {
        let utf8 = Array(token.utf8)
        guard utf8.count == 6, utf8.starts(with: Array("<0x".utf8)), utf8[5] == UInt8(ascii: ">") else { return nil }
        return UInt8(String(decoding: utf8[3..<5], as: UTF8.self), radix: 16)
    }

    // MARK: - Fingerprint

    private static func computeFingerprint(tokens: [String], types: [Int32], merges: [String]) -> String {
        var hash = FNV1a64()
        hash.add(UInt64(tokens.count))
        for (token, type) in zip(tokens, types) {
            hash.add(UInt64(token.utf8.count))
            hash.add(token.utf8)
            hash.add(UInt64(UInt32(bitPattern: type)))
        }
        hash.add(UInt64(merges.count))
        for merge in merges {
            hash.add(UInt64(merge.utf8.count))
            hash.add(merge.utf8)
        }
        let hex = String(hash.value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// Turns tokens that arrive one at a time into text, holding back the bytes of a UTF-8
/// character that a token leaves incomplete until a later token completes it.
public struct StreamingDecoder: Sendable {
    private let tokenizer: Tokenizer
    private var pending: [UInt8] = []

    init(tokenizer: Tokenizer) {
        self.tokenizer = tokenizer
    }

    /// Adds token `id` and returns the text it completes, which may be empty (the token ended
    /// inside a multi-byte character) or include characters begun by earlier tokens.
    /// Ids outside the vocabulary add nothing.
    public mutating func append(_ id: Int) -> String {
        tokenizer.appendBytes(of: id, to: &pending)
        let held = StreamingDecoder.incompleteSuffixLength(pending)
        guard pending.count > held else { return "" }
        let text = String(decoding: pending[..<(pending.count - held)], as: UTF8.self)
        pending.removeFirst(pending.count - held)
        return text
    }

    /// Returns whatever is still held back (an incomplete character becomes U+FFFD) and
    /// empties the decoder.
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// Length of the trailing bytes that begin a UTF-8 character but do not complete it yet,
    /// i.e. a valid prefix of a multi-byte sequence; 0 if the bytes end on a boundary.
    static func incompleteSuffixLength(_ bytes: [UInt8]) -> Int {
        let count = bytes.count
        for length in 1...3 where length <= count {
            let lead = bytes[count - length]
            let needed: Int
            switch lead {
            case 0x80...0xBF: continue  // Continuation byte: the lead is further back.
            case 0xC2...0xDF: needed = 2
            case 0xE0...0xEF: needed = 3
            case 0xF0...0xF4: needed = 4
            default: return 0  // ASCII or a byte that cannot start a sequence.
            }
            guard length < needed else { return 0 }
            // The bytes after the lead must be allowed continuations.
            for offset in 1..<length {
                let byte = bytes[count - length + offset]
                var allowed: ClosedRange<UInt8> = 0x80...0xBF
                if offset == 1 {
                    switch lead {
                    case 0xE0: allowed = 0xA0...0xBF
                    case 0xED: allowed = 0x80...0x9F
                    case 0xF0: allowed = 0x90...0xBF
                    case 0xF4: allowed = 0x80...0x8F
                    default: break
                    }
                }
                if !allowed.contains(byte) { return 0 }
            }
            return length
        }
        return 0
    }
}

/// 64-bit FNV-1a hash.
private struct FNV1a64 {
    private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325

    mutating func add<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        for byte in bytes {
            value = (value ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
        }
    }

    /// Adds `number` as 8 little-endian bytes.
    mutating func add(_ number: UInt64) {
        for shift in stride(from: 0, to: 64, by: 8) {
            add(CollectionOfOne(UInt8(truncatingIfNeeded: number >> UInt64(shift))))
        }
    }
}

/// A binary min-heap of `UInt64` keys (rank in the high half, position in the low half, so
/// ties go to the leftmost pair).
private struct MinHeap {
    private var items: [UInt64] = []

    mutating func removeAll() { items.removeAll(keepingCapacity: true) }

    mutating func push(_ item: UInt64) {
        items.append(item)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child] < items[parent] else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func popMin() -> UInt64? {
        guard let last = items.popLast() else { return nil }
        guard !items.isEmpty else { return last }
        let top = items[0]
        items[0] = last
        var parent = 0
        while true {
            let left = 2 * parent + 1
            guard left < items.count else { break }
            let right = left + 1
            let smaller = right < items.count && items[right] < items[left] ? right : left
            guard items[smaller] < items[parent] else { break }
            items.swapAt(smaller, parent)
            parent = smaller
        }
        return top
    }
}
