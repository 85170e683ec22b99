import Foundation
import Synchronization

/// Runs `body(i)` for i in 0..<count on all cores, with threads that stay awake briefly between
/// calls so that the hundreds of small parallel loops of one decoding step do not each pay a
/// thread wake-up (GCD's `concurrentPerform` costs tens of microseconds per call there).
///
/// Workers spin for `spinSeconds` after their last job, then sleep on a semaphore, so an idle
/// process (or one running BLAS, which has threads of its own) does not burn a core.
/// Calls from several threads at once are serialized. Never call BLAS inside `body`.
public final class ParallelFor: @unchecked Sendable {
    /// The shared pool, one thread per core (including the caller's).
    public static let shared = ParallelFor(threads: ProcessInfo.processInfo.activeProcessorCount)

    public let threads: Int
    private let spinSeconds: Double
    private let generation = Atomic<Int>(0)
    private let next = Atomic<Int>(0)
    private let finished = Atomic<Int>(0)
    private let sleeping = Atomic<Int>(0)
    /// Workers inside a generation's work loop; run() returns only when none is.
    private let active = Atomic<Int>(0)
    private let wake = DispatchSemaphore(value: 0)
    private let callLock = NSLock()
    private nonisolated(unsafe) var count = 0
    private nonisolated(unsafe) var body: ((Int) -> Void)? = nil

    public init(threads: Int, spinSeconds: Double = 0.002) {
        self.threads = max(1, threads)
        self.spinSeconds = spinSeconds
        for _ in 1..<self.threads {
            let t = Thread { [unowned self] in self.workerLoop() }
            t.stackSize = 1 << 20
            t.start()
        }
    }

    /// Runs body(0..<count), returning when every index is done.
    public func run(_ count: Int, _ body: @escaping (Int) -> Void) {
        if threads == 1 || count <= 1 {
            for i in 0..<count { body(i) }
            return
        }
        callLock.lock()
        defer { callLock.unlock() }
        self.count = count
        self.body = body
        next.store(0, ordering: .relaxed)
        finished.store(0, ordering: .relaxed)
        generation.add(1, ordering: .releasing)
        // wake sleepers
        let asleep = sleeping.exchange(0, ordering: .acquiring)
        for _ in 0..<asleep { wake.signal() }
        work(body, count)
        while finished.load(ordering: .acquiring) < count || active.load(ordering: .acquiring) > 0 {}
        self.body = nil
    }

    private func work(_ body: (Int) -> Void, _ count: Int) {
        while true {
            let i = next.add(1, ordering: .relaxed).oldValue
            if i >= count { return }
            body(i)
            finished.add(1, ordering: .releasing)
        }
    }

    private func workerLoop() {
        var seen = generation.load(ordering: .acquiring)
        while true {
            // spin for a while waiting for a new generation, then sleep until run() signals
            var start = DispatchTime.now().uptimeNanoseconds
            var spins = 0
            while generation.load(ordering: .acquiring) == seen {
                spins += 1
                if spins & 1023 == 0, Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9 > spinSeconds {
                    sleeping.add(1, ordering: .releasing)
                    // A run() that began before this announcement is seen here; one that begins
                    // after it signals. A leftover signal only costs one extra spin round.
                    if generation.load(ordering: .acquiring) == seen { wake.wait() }
                    start = DispatchTime.now().uptimeNanoseconds
                }
            }
            let g = generation.load(ordering: .acquiring)
            active.add(1, ordering: .acquiring)
            // Only join if run() is still in generation g (it waits for `active` before returning).
            if generation.load(ordering: .acquiring) == g, let body = self.body { work(body, count) }
            active.subtract(1, ordering: .releasing)
            seen = g
        }
    }
}
