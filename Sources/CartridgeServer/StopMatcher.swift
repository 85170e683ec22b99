/// Cuts generated text at the first stop sequence, and holds back the tail that could still
/// become one, so a stream never sends text a later stop would have cut.
struct StopMatcher {
    let stops: [String]
    private(set) var text = ""
    /// Characters of `text` already handed out.
    private var sent = 0

    init(stops: [String]) { self.stops = stops }

    /// Adds newly decoded text; returns what can be sent now and whether a stop sequence ended it.
    mutating func append(_ piece: String) -> (ready: String, stopped: Bool) {
        text += piece
        if let cut = stops.compactMap({ text.range(of: $0)?.lowerBound }).min() {
            text = String(text[..<cut])
            return (take(upTo: text.count), true)
        }
        return (take(upTo: text.count - heldBack()), false)
    }

    /// The rest, once generation ends without a stop sequence.
    mutating func finish() -> String { take(upTo: text.count) }

    /// Length of the longest tail of `text` that is a proper prefix of a stop sequence.
    private func heldBack() -> Int {
        var best = 0
        for s in stops {
            for n in stride(from: min(s.count - 1, text.count), to: best, by: -1) where text.hasSuffix(String(s.prefix(n))) {
                best = n
                break
            }
        }
        return best
    }

    private mutating func take(upTo end: Int) -> String {
        guard end > sent else { return "" }
        let out = String(text.dropFirst(sent).prefix(end - sent))
        sent = end
        return out
    }
}
