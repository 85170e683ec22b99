import CartridgeKernels
import Foundation
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
