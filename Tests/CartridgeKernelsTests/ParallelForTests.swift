import CartridgeKernels
import Foundation
import Synchronization
import XCTest

final class ParallelForTests: XCTestCase {
    /// Many back-to-back runs of different sizes: every index runs exactly once, in the run it belongs to.
    func testEveryIndexRunsExactlyOncePerCall() {
        let pool = ParallelFor(threads: 3, spinSeconds: 0.0005)
        let slots = UnsafeMutablePointer<Int>.allocate(capacity: 64)
        defer { slots.deallocate() }
        let p = SendablePointer(slots)
        for call in 0..<5000 {
            let n = call % 64 + 1
            p.pointer.initialize(repeating: 0, count: 64)
            let tag = call
            pool.run(n) { i in p.pointer[i] += tag + 1 }
            for i in 0..<64 { XCTAssertEqual(slots[i], i < n ? call + 1 : 0, "call \(call) index \(i)") }
            if call % 997 == 0 { usleep(2000) }  // let the workers fall asleep now and then
        }
    }
}

final class ParallelForIdleTests: XCTestCase {
    /// Calls that arrive just as the workers decide to sleep must not leave wake-up signals
    /// behind: a worker holding spare signals never sleeps again and takes a core from BLAS.
    func testWorkersSleepAfterCallsThatRaceWithTheirSleep() {
        let pool = ParallelFor(threads: 2, spinSeconds: 0.0005)
        let sum = Atomic<Int>(0)
        for i in 0..<600 {
            pool.run(4) { _ in sum.add(1, ordering: .relaxed) }
            usleep(UInt32(300 + (i * 37) % 500))  // around the spin budget
        }
        XCTAssertEqual(sum.load(ordering: .relaxed), 2400)
        usleep(20_000)
        func cpuSeconds() -> Double {
            var u = rusage()
            getrusage(RUSAGE_SELF.rawValue, &u)
            return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6
        }
        let before = cpuSeconds()
        usleep(200_000)
        let busy = cpuSeconds() - before
        XCTAssertLessThan(busy, 0.05, "the process used \(busy) s of CPU in 0.2 s of idleness: a worker keeps spinning")
    }
}
