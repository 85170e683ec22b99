import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Chooses OpenBLAS's kernels for this CPU and checks them numerically.
///
/// Debian's OpenBLAS 0.3.21 does not recognise recent CPUs (AMD Zen 4 among them) and falls back
/// to its SSE3 "Prescott" kernels, 3-5x slower than the AVX-512 ones. OpenBLAS reads
/// `OPENBLAS_CORETYPE` once, when the library is loaded, so an executable must have it set
/// before it starts: `reexecWithFastKernelsIfNeeded()` sets it and restarts the process.
public enum OpenBLASSetup {
    /// The core type suited to this CPU, from /proc/cpuinfo flags, or nil if OpenBLAS's own choice is fine.
    public static func recommendedCoreType() -> String? {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flagsLine = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
        let flags = Set(flagsLine.split(separator: " ").map(String.init))
        if flags.isSuperset(of: ["avx512f", "avx512dq", "avx512bw", "avx512vl"]) { return "SkylakeX" }
        if flags.isSuperset(of: ["avx2", "fma"]) { return "Haswell" }
        return nil
    }

    /// Call first thing in `main`: if `OPENBLAS_CORETYPE` is unset and this CPU has a better
    /// kernel family than OpenBLAS may detect, set it and re-execute the same binary with the same
    /// arguments, so the library loads with the fast kernels. Set `CARTRIDGES_NO_REEXEC=1` to opt out.
    public static func reexecWithFastKernelsIfNeeded() {
        #if os(Linux)
        let env = ProcessInfo.processInfo.environment
        guard env["OPENBLAS_CORETYPE"] == nil, env["CARTRIDGES_NO_REEXEC"] == nil,
              let core = recommendedCoreType() else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        setenv("CARTRIDGES_NO_REEXEC", "1", 1)  // never loop
        let args = CommandLine.arguments
        var cArgs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) }
        cArgs.append(nil)
        execv("/proc/self/exe", &cArgs)
        // execv only returns on failure: carry on with whatever kernels were loaded.
        #endif
    }

    /// Runs a small sgemm against a plain loop and returns the largest absolute difference.
    public static func verifyKernels() -> Float {
        let m = 37, n = 29, k = 71
        var a = [Float](repeating: 0, count: m * k), b = [Float](repeating: 0, count: k * n)
        var seed: UInt32 = 12345
        func next() -> Float { seed = seed &* 1_664_525 &+ 1_013_904_223; return Float(seed >> 8) / Float(1 << 24) - 0.5 }
        for i in a.indices { a[i] = next() }
        for i in b.indices { b[i] = next() }
        var c = [Float](repeating: 0, count: m * n)
        BLAS.gemm(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, c: &c, ldc: n)
        var worst: Float = 0
        for i in 0..<m {
            for j in 0..<n {
                var s: Double = 0
                for l in 0..<k { s += Double(a[i * k + l]) * Double(b[l * n + j]) }
                worst = max(worst, abs(Float(s) - c[i * n + j]))
            }
        }
        return worst
    }

    /// Logs the kernel in use and checks it; returns false (and logs an error) if its results are wrong.
    @discardableResult
    public static func checkAndLog(logger: Logger) -> Bool {
        let error = verifyKernels()
        let ok = error < 1e-4
        let env = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? "unset"
        logger.debug("OpenBLAS kernel \(BLAS.coreName) (OPENBLAS_CORETYPE=\(env)), \(BLAS.threads) threads, sgemm check max error \(error)")
        if !ok {
            logger.error("OpenBLAS kernel \(BLAS.coreName) gives wrong results (max error \(error)); unset OPENBLAS_CORETYPE")
        } else if let wanted = recommendedCoreType(), BLAS.coreName.lowercased() != wanted.lowercased() {
            logger.warning("OpenBLAS uses its \(BLAS.coreName) kernels; set OPENBLAS_CORETYPE=\(wanted) before starting for 3-5x faster matrix products")
        }
        return ok
    }
}

import Foundation
