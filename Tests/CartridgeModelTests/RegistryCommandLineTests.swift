import CartridgeTestSupport
import Foundation
import XCTest

/// `cartridge registry` as a user runs it: push (verified against the model), alias, split,
/// rollback, refused removal, show, import, and pushes from several processes at once.
final class RegistryCommandLineTests: XCTestCase {
    private func json(_ r: CommandLineTests.Run) throws -> Any {
        XCTAssertEqual(r.status, 0, r.stderr)
        return try JSONSerialization.jsonObject(with: Data(r.stdout.utf8))
    }

    func testPushAliasRollbackRemoveAndConcurrentPushes() throws {
        let cli = CommandLineTests.self
        let dir = try TestResources.temporaryDirectory("registry-cli")
        defer { try? FileManager.default.removeItem(at: dir) }
        let docs = dir.appendingPathComponent("docs"), carts = dir.appendingPathComponent("carts")
        try FileManager.default.createDirectory(at: docs, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: carts, withIntermediateDirectories: true)
        try "The lighthouse on Skerry Point was built in 1871.".write(to: docs.appendingPathComponent("a.txt"), atomically: true, encoding: .utf8)
        let small = carts.appendingPathComponent("skerry.cart").path, large = dir.appendingPathComponent("large.cart").path
        XCTAssertEqual(try cli.run(["init", docs.path, "-o", small, "--size", "8"]).status, 0)
        XCTAssertEqual(try cli.run(["init", docs.path, "-o", large, "--size", "12"]).status, 0)
        let reg = ["--registry", dir.appendingPathComponent("registry").path]

        let v1 = try json(cli.run(["registry", "push"] + reg + ["skerry", small])) as! [String: Any]
        let v2 = try json(cli.run(["registry", "push"] + reg + ["skerry", large])) as! [String: Any]
        XCTAssertEqual(v1["version"] as? Int, 1)
        XCTAssertEqual(v2["version"] as? Int, 2)
        XCTAssertEqual((v1["sha256"] as? String)?.count, 64)
        XCTAssertNotEqual(v1["sha256"] as? String, v2["sha256"] as? String)

        _ = try json(cli.run(["registry", "alias"] + reg + ["skerry", "stable", "--version", "1"]))
        _ = try json(cli.run(["registry", "alias"] + reg + ["skerry", "stable", "--version", "2"]))
        _ = try json(cli.run(["registry", "alias"] + reg + ["skerry", "canary", "--split", "1:90,2:10"]))
        let back = try json(cli.run(["registry", "rollback"] + reg + ["skerry", "stable"])) as! [String: Any]
        XCTAssertEqual((back["target"] as? [String: Any])?["version"] as? Int, 1)

        let refused = try cli.run(["registry", "remove"] + reg + ["skerry@1"])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("skerry@1 is in use by alias canary, stable"), refused.stderr)
        let missing = try cli.run(["registry", "alias"] + reg + ["skerry", "stable", "--version", "7"])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("has no version 7"), missing.stderr)
        let notCart = dir.appendingPathComponent("x.cart")
        try Data("hello".utf8).write(to: notCart)
        XCTAssertEqual(try cli.run(["registry", "push"] + reg + ["skerry", notCart.path]).status, 1)

        let show = try json(cli.run(["registry", "show"] + reg + ["skerry", "--json"])) as! [String: Any]
        XCTAssertEqual((show["versions"] as! [[String: Any]]).map { $0["version"] as? Int }, [1, 2])
        XCTAssertEqual((show["versions"] as! [[String: Any]]).map { $0["parent"] as? Int }, [nil, 1])
        let aliases = Dictionary(uniqueKeysWithValues: (show["aliases"] as! [[String: Any]]).map { ($0["alias"] as! String, $0["target"] as! [String: Any]) })
        XCTAssertEqual(aliases["stable"]?["version"] as? Int, 1)
        XCTAssertEqual((aliases["canary"]?["split"] as? [[String: Any]])?.map { $0["weight"] as? Int }, [90, 10])

        // four processes push at once: every push gets its own version, none is lost
        let binary = try TestResources.executable("cartridge")
        let procs = try (0..<4).map { _ -> Process in
            let p = Process()
            p.executableURL = binary
            p.arguments = ["registry", "push"] + reg + ["many", small]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            return p
        }
        for p in procs { p.waitUntilExit(); XCTAssertEqual(p.terminationStatus, 0) }
        let many = try json(cli.run(["registry", "show"] + reg + ["many", "--json"])) as! [String: Any]
        XCTAssertEqual((many["versions"] as! [[String: Any]]).map { $0["version"] as? Int }, [1, 2, 3, 4])

        let imported = try json(cli.run(["registry", "import"] + reg + [carts.path])) as! [[String: Any]]
        XCTAssertEqual(imported.map { $0["name"] as? String }, ["skerry"])
        XCTAssertEqual(imported.first?["version"] as? Int, 3)
        let list = try json(cli.run(["registry", "list"] + reg + ["--json"])) as! [[String: Any]]
        XCTAssertEqual(list.map { $0["name"] as? String }, ["many", "skerry"])
    }
}
