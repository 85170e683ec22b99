/// A check that stays in the release build. The package compiles with `-Ounchecked`, which removes
/// `precondition`; a broken invariant here is a bug in the caller (input is validated earlier,
/// with typed errors), and going on would read or write out of bounds, so it stops the process.
@inline(__always)
public func invariant(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String = "invariant broken",
                      file: StaticString = #fileID, line: UInt = #line) {
    if !condition() { fatalError(message(), file: file, line: line) }
}
