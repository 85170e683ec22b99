/// Splits `rows` into contiguous ranges run on `ParallelFor.shared` (for row-wise elementwise ops
/// between BLAS calls: the workers sleep right after, leaving the cores to BLAS; never call BLAS
/// inside `body`).
public func parallelRows(_ rows: Int, minimum: Int = 16, _ body: @escaping (Range<Int>) -> Void) {
    let parts = Swift.min(ParallelFor.shared.threads * 4, Swift.max(1, rows / minimum))
    if parts <= 1 { body(0..<rows); return }
    let per = (rows + parts - 1) / parts
    ParallelFor.shared.run(parts, keepWarm: false) { i in
        let lower = Swift.min(rows, i * per), upper = Swift.min(rows, lower + per)
        if lower < upper { body(lower..<upper) }
    }
}
