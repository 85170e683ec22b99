import CartridgeFormat
import CartridgeModel
@testable import CartridgeRuntime
import CartridgeTestSupport
import Foundation
import XCTest

final class FingerprintTests: XCTestCase {
    /// A copy of the model with one weight byte changed (same shapes, as a fine-tune would be) gets
    /// another fingerprint; an identical copy gets the same one.
    func testFingerprintCoversEveryWeightByte() throws {
        let lm = try RuntimeTestSupport.runtime().model
        let dir = try TestResources.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let copy = dir.appendingPathComponent("copy.gguf"), tuned = dir.appendingPathComponent("tuned.gguf")
        try FileManager.default.copyItem(atPath: lm.path, toPath: copy.path)
        var bytes = try Data(contentsOf: copy)
        let last = lm.gguf.tensors["blk.29.ffn_down.weight"]!
        let at = bytes.count - 7  // inside the last tensor's data
        XCTAssertGreaterThan(last.byteCount, 7)
        bytes[at] ^= 0x01
        try bytes.write(to: tuned)
        let original = ModelFingerprint.compute(gguf: lm.gguf, config: lm.config)
        XCTAssertEqual(ModelFingerprint.compute(gguf: try GGUFFile(path: copy.path), config: lm.config), original)
        XCTAssertNotEqual(ModelFingerprint.compute(gguf: try GGUFFile(path: tuned.path), config: lm.config), original)
        var otherConfig = lm.config
        otherConfig.ropeBase = 10_000
        XCTAssertNotEqual(ModelFingerprint.compute(gguf: lm.gguf, config: otherConfig), original, "hyper-parameters count too")
        XCTAssertEqual(try ModelFingerprint.fingerprint(of: lm), original, "the cached fingerprint is the computed one")
        XCTAssertEqual(try RuntimeTestSupport.runtime().identity, ModelIdentity(name: lm.config.name, fingerprint: original))
    }
}
