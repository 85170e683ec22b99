import CartridgeTestSupport
import Foundation
import XCTest

/// `cartridge convert` as a user runs it: an f16 cartridge rewritten as q8_0 and q4_0.
final class ConvertCommandLineTests: XCTestCase {
    func testConvertRewritesACartridgeInAnotherDTypeAndReportsTheError() throws {
        let cli = CommandLineTests.self
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cli-convert-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let doc = dir.appendingPathComponent("a.txt")
        try "The lighthouse on Skerry Point was built in 1871 by the engineer Anna Lind.".write(to: doc, atomically: true, encoding: .utf8)
        let f16 = dir.appendingPathComponent("skerry.cart").path
        let made = try cli.run(["init", doc.path, "-o", f16, "--size", "32"])
        XCTAssertEqual(made.status, 0, made.stderr)

        var sizes: [String: Int] = [:]
        for (dtype, blockBytes) in [("q8_0", 34), ("q4_0", 18)] {
            let out = dir.appendingPathComponent("skerry-\(dtype).cart").path
            let r = try cli.run(["convert", f16, "-o", out, "--dtype", dtype])
            XCTAssertEqual(r.status, 0, r.stderr)
            let inBytes = try FileManager.default.attributesOfItem(atPath: f16)[.size] as! Int
            let outBytes = try FileManager.default.attributesOfItem(atPath: out)[.size] as! Int
            sizes[dtype] = outBytes
            XCTAssertTrue(r.stdout.contains("(f16) to \(out) (\(dtype))"), r.stdout)
            XCTAssertTrue(r.stdout.contains("bytes   \(inBytes) -> \(outBytes)"), r.stdout)
            for tensor in ["keys", "values"] {
                XCTAssertTrue(r.stdout.contains("\(tensor)") && r.stdout.contains("RMS error") && r.stdout.contains("max |error|"), r.stdout)
            }

            let inspect = try cli.run(["inspect", out, "--json"])
            XCTAssertEqual(inspect.status, 0, inspect.stderr)
            let info = try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as! [String: Any]
            let meta = info["metadata"] as! [String: Any], header = info["header"] as! [String: Any]
            XCTAssertEqual(info["verified"] as? Bool, true)
            XCTAssertEqual(meta["dtype"] as? String, dtype)
            XCTAssertEqual(header["dtype"] as? String, dtype)
            let slots = meta["length"] as! Int
            // 2 tensors × 30 layers × 3 KV heads × slots × 2 blocks of 32 per row of 64
            XCTAssertEqual(header["payloadRawLength"] as? Int, 2 * 30 * 3 * slots * 2 * blockBytes)
        }
        XCTAssertLessThan(sizes["q4_0"]!, sizes["q8_0"]!)

        // a q8_0 cartridge still answers from its document
        let ask = try cli.run(["ask", "--cartridge", dir.appendingPathComponent("skerry-q8_0.cart").path, "--max-tokens", "16", "Who built the lighthouse?"])
        XCTAssertEqual(ask.status, 0, ask.stderr)
        XCTAssertTrue(ask.stdout.contains("Anna Lind"), ask.stdout)

        // refusals: the input itself (under any spelling), an unknown dtype, a missing input
        let original = try Data(contentsOf: URL(fileURLWithPath: f16))
        for same in [f16, dir.appendingPathComponent("./skerry.cart").path] {
            let r = try cli.run(["convert", f16, "-o", same, "--dtype", "q8_0"])
            XCTAssertNotEqual(r.status, 0)
            XCTAssertTrue(r.stderr.contains("is the input file"), r.stderr)
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: f16)), original, "the input is untouched")
        let unknown = try cli.run(["convert", f16, "-o", dir.appendingPathComponent("x.cart").path, "--dtype", "q5_1"])
        XCTAssertNotEqual(unknown.status, 0)
        XCTAssertTrue(unknown.stderr.contains("f16, bf16, f32, q8_0 or q4_0"), unknown.stderr)
        let missing = try cli.run(["convert", dir.appendingPathComponent("none.cart").path, "-o", dir.appendingPathComponent("y.cart").path, "--dtype", "q8_0"])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.stderr.contains("none.cart"), missing.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("x.cart").path))
    }
}
