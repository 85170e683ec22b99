import CartridgeTestSupport
import Foundation
import XCTest

/// `make cartridges` as a user runs it: each source folder is compiled once, again only when its
/// documents change, and nothing that is not a source folder (work directories) becomes a cartridge.
final class BatchBuildTests: XCTestCase {
    /// Runs `make cartridges` on `dir` and returns the folders it compiled, from its "cartridges: compiling" lines.
    private func makeCartridges(_ dir: URL, compiler: URL) throws -> [String] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        // next-token training on a few windows: the cheapest compile that still runs the real compiler
        p.arguments = ["make", "--no-print-directory", "cartridges", "CARTRIDGES_DIR=\(dir.path)", "CARTRIDGE_COMPILE=\(compiler.path)",
                       "COMPILE_FLAGS=--objective next-token --size 8 --samples 4 --steps 2 --batch-size 2 --window-min 16 --window-max 32 --validation 0"]
        p.currentDirectoryURL = TestResources.repository
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, text)
        return text.split(separator: "\n").compactMap { line in
            line.hasPrefix("cartridges: compiling ") ? URL(fileURLWithPath: String(line.dropFirst("cartridges: compiling ".count))).lastPathComponent : nil
        }.sorted()
    }

    func testEachChangedFolderIsCompiledOnceAndNothingElse() throws {
        let compiler = try TestResources.executable("cartridge-compile")
        _ = try TestResources.model()
        let dir = try TestResources.temporaryDirectory("batch-build")
        defer { try? FileManager.default.removeItem(at: dir) }
        let text = "The lighthouse on Skerry Point was built in 1871 by the engineer Anna Lind. It has guided ships past the reef ever since, and its lamp was electrified in 1932."
        for name in ["alpha", "beta"] {
            try FileManager.default.createDirectory(at: dir.appendingPathComponent(name), withIntermediateDirectories: true)
            try (name + ": " + text).write(to: dir.appendingPathComponent("\(name)/notes.txt"), atomically: true, encoding: .utf8)
        }

        XCTAssertEqual(try makeCartridges(dir, compiler: compiler), ["alpha", "beta"], "first run: every folder")
        let alpha = dir.appendingPathComponent("alpha.cart"), beta = dir.appendingPathComponent("beta.cart")
        let builtAt = try [alpha, beta].map { try FileManager.default.attributesOfItem(atPath: $0.path)[.modificationDate] as! Date }

        XCTAssertEqual(try makeCartridges(dir, compiler: compiler), [], "second run: nothing changed")
        // a touched document whose contents did not change is not a change
        try FileManager.default.setAttributes([.modificationDate: Date()], ofItemAtPath: dir.appendingPathComponent("beta/notes.txt").path)
        XCTAssertEqual(try makeCartridges(dir, compiler: compiler), [], "a touch alone")

        try ("beta: " + text + " The keeper's house is now a museum.").write(to: dir.appendingPathComponent("beta/notes.txt"), atomically: true, encoding: .utf8)
        XCTAssertEqual(try makeCartridges(dir, compiler: compiler), ["beta"], "only the changed folder")
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: alpha.path)[.modificationDate] as? Date, builtAt[0])
        XCTAssertNotEqual(try FileManager.default.attributesOfItem(atPath: beta.path)[.modificationDate] as? Date, builtAt[1])

        // only the two sources and their cartridges: no work directory became a source or a cartridge
        let entries = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { !$0.hasPrefix(".") }.sorted()
        XCTAssertEqual(entries, ["alpha", "alpha.cart", "beta", "beta.cart"])
    }
}
