import Foundation
import Synchronization

/// Runs `body(i)` for i in 0..<count on all cores, with threads that stay awake briefly between
/// calls so that the hundreds of small parallel loops of one decoding step do not each pay a
/// thread wake-up (GCD's `concurrentPerform` costs tens of microseconds per call there).
///
/// Workers spin for `spinSeconds` after their last job, then sleep on a semaphore, so an idle
/// process (or one running BLAS, which has threads of its own) does not burn a core.
/// Calls from several threads at once are serialized. Never call BLAS inside `body`.
/// A pool and its threads live as long as the process: use `shared` rather than making more.
public final class ParallelFor: @unchecked Sendable {
    /// The shared pool, one thread per core (including the caller's).
    public static let shared = ParallelFor(threads: ProcessInfo.processInfo.activeProcessorCount)

    public let threads: Int
    private let spinSeconds: Double
    /// Bumped for every job; workers spin on it.
    private let generation = Atomic<Int>(0)
    private let sleeping = Atomic<Int>(0)
    private let wake = DispatchSemaphore(value: 0)
    private let callLock = NSLock()
    private let jobLock = NSLock()
    private nonisolated(unsafe) var current: Job?

    /// One call's work with its own counters: a worker that arrives late at an old job finds its
    /// indices taken and leaves, so it can never run an old body on a new call's indices.
    final class Job: @unchecked Sendable {
        let body: (Int) -> Void
        let count: Int
        let spinAfter: Double
        let next = Atomic<Int>(0)
        let finished = Atomic<Int>(0)
        init(body: @escaping (Int) -> Void, count: Int, spinAfter: Double) {
            self.body = body
            self.count = count
            self.spinAfter = spinAfter
        }

        func work() {
            while true {
                let i = next.add(1, ordering: .relaxed).oldValue
                if i >= count { return }
                body(i)
                finished.add(1, ordering: .releasing)
            }
        }
    }

    public init(threads: Int, spinSeconds: Double = 0.002) {
        self.threads = max(1, threads)
        self.spinSeconds = spinSeconds
        for _ in 1..<self.threads {
            let t = Thread { self.workerLoop() }  // workers keep the pool alive
            t.stackSize = 1 << 20
            t.start()
        }
    }

    /// Runs body(0..<count), returning when every index is done. `keepWarm: false` sends the
    /// workers to sleep right after this job (use it when BLAS, with threads of its own, runs next).
    public func run(_ count: Int, keepWarm: Bool = true, _ body: @escaping (Int) -> Void) {
        if threads == 1 || count <= 1 {
            for i in 0..<count { body(i) }
            return
        }
        callLock.lock()
        defer { callLock.unlock() }
        let job = Job(body: body, count: count, spinAfter: keepWarm ? spinSeconds : 0)
        jobLock.lock()
        current = job
        jobLock.unlock()
        // sequentially consistent with the workers' announcement below: either a worker sees this
        // generation, or this exchange sees its announcement and wakes it
        generation.add(1, ordering: .sequentiallyConsistent)
        let asleep = sleeping.exchange(0, ordering: .sequentiallyConsistent)
        for _ in 0..<asleep { wake.signal() }
        job.work()
        while job.finished.load(ordering: .acquiring) < count {}
        jobLock.lock()
        current = nil
        jobLock.unlock()
    }

    private func workerLoop() {
        var seen = generation.load(ordering: .acquiring)
        var spinBudget = spinSeconds
        while true {
            // spin for a while waiting for a new job, then sleep until run() signals
            var start = DispatchTime.now().uptimeNanoseconds
            var spins = 0
            while generation.load(ordering: .acquiring) == seen {
                spins += 1
                if spins & 1023 == 0, Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9 > spinBudget {
                    sleeping.add(1, ordering: .sequentiallyConsistent)
                    if generation.load(ordering: .sequentiallyConsistent) == seen {
                        wake.wait()
                    } else {
                        // A job came after all: withdraw the announcement, or, when run() already
                        // counted it, take the signal it sent. Leaving that signal in the semaphore
                        // would let a later wait() return at once: a worker that never sleeps and
                        // keeps a core from BLAS (seen as a 3x slower training step).
                        var n = sleeping.load(ordering: .sequentiallyConsistent)
                        while true {
                            if n == 0 { wake.wait(); break }
                            let (done, now) = sleeping.compareExchange(expected: n, desired: n - 1, ordering: .sequentiallyConsistent)
                            if done { break }
                            n = now
                        }
                    }
                    start = DispatchTime.now().uptimeNanoseconds
                    spinBudget = spinSeconds
                }
            }
            seen = generation.load(ordering: .acquiring)
            jobLock.lock()
            let job = current
            jobLock.unlock()
            if let job {
                spinBudget = job.spinAfter
                job.work()
            }
        }
    }
}
