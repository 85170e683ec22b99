import Foundation
import XCTest

/// Counts the tests skipped for a missing download or executable and, when the test run ends,
/// prints one line saying how many were skipped and why, so a bare `swift test` never skips
/// silently. (`make test` sets `CARTRIDGES_REQUIRE_MODEL=1`, which fails those tests instead.)
public enum SkipReport {
    private final class Observer: NSObject, XCTestObservation, @unchecked Sendable {
        let lock = NSLock()
        var counts: [String: Int] = [:]   // "what (why)" -> skipped tests
        var advice: Set<String> = []

        func record(_ key: String, advice: String) {
            lock.lock(); defer { lock.unlock() }
            counts[key, default: 0] += 1
            self.advice.insert(advice)
        }

        func testBundleDidFinish(_ testBundle: Bundle) {
            lock.lock(); defer { lock.unlock() }
            guard !counts.isEmpty else { return }
            let total = counts.values.reduce(0, +)
            let reasons = counts.sorted { $0.key < $1.key }.map { "\($0.value) for \($0.key)" }.joined(separator: "; ")
            let fixes = advice.sorted().map { "`\($0)`" }.joined(separator: " and ")
            print("SKIPPED \(total) test\(total == 1 ? "" : "s"): \(reasons). To run them: \(fixes) (`make test` fails them instead of skipping).")
        }
    }

    private static let observer: Observer = {
        let o = Observer()
        XCTestObservationCenter.shared.addTestObserver(o)
        return o
    }()

    /// Records one skipped test and returns the skip to throw.
    public static func skip(_ what: String, because reason: String, advice: String = "make setup") -> XCTSkip {
        observer.record("\(what) (\(reason))", advice: advice)
        return XCTSkip("\(what) unavailable (\(reason)); run `\(advice)`")
    }
}
