import Foundation

/// Progress of a long phase on standard error: a bar with rate and ETA on a terminal, a plain
/// line every `interval` seconds otherwise (logs, CI).
public final class Progress: @unchecked Sendable {
    let label: String
    let total: Int
    let unit: String
    let start = Date()
    var lastPrint = Date.distantPast
    let interactive = isatty(2) == 1
    let interval: TimeInterval
    /// Units already done when this run started (a resumed phase): not counted in the rate.
    let startingAt: Int

    public init(_ label: String, total: Int, unit: String, startingAt: Int = 0, interval: TimeInterval = 15) {
        self.label = label
        self.total = max(1, total)
        self.unit = unit
        self.startingAt = startingAt
        self.interval = interval
    }

    /// Reports `done` of `total`; `note` is appended (for example the current loss).
    public func update(_ done: Int, note: String = "") {
        let now = Date()
        let final = done >= total
        guard final || now.timeIntervalSince(lastPrint) >= (interactive ? 0.2 : interval) else { return }
        lastPrint = now
        let elapsed = now.timeIntervalSince(start)
        let rate = elapsed > 0 ? Double(done - startingAt) / elapsed : 0
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let pct = Double(done) / Double(total)
        var line: String
        if interactive {
            let width = 24, filled = Int(pct * Double(width))
            line = "\r\(label) [" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] "
        } else {
            line = "\(label): "
        }
        line += "\(done)/\(total) \(unit), \(String(format: "%.2f", rate)) \(unit)/s, elapsed \(Self.clock(elapsed)), ETA \(Self.clock(eta))"
        if !note.isEmpty { line += ", \(note)" }
        if interactive { line += final ? "\n" : "\u{1B}[K" } else { line += "\n" }
        FileHandle.standardError.write(Data(line.utf8))
    }

    static func clock(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
    }
}
