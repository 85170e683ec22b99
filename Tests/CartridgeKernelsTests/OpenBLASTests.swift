import CartridgeKernels
import CartridgeTestSupport
import XCTest

final class OpenBLASTests: XCTestCase {
    func testSgemmAgreesWithAPlainLoop() {
        let err = OpenBLASSetup.verifyKernels()
        print("OpenBLAS core \(BLAS.coreName), \(BLAS.threads) threads, sgemm max error \(err)")
        XCTAssertLessThan(err, 1e-4)
    }

    /// `make test` exports OPENBLAS_CORETYPE; the library must then run the kernels chosen for this CPU.
    func testFastKernelsAreActiveWhenRequested() throws {
        guard let wanted = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] else {
            throw SkipReport.skip("the OpenBLAS kernel check", because: "OPENBLAS_CORETYPE is not set", advice: "make test")
        }
        XCTAssertEqual(BLAS.coreName.lowercased(), wanted.lowercased())
    }
}
