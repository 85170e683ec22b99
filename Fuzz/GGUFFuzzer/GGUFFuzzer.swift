// libFuzzer target for the GGUF reader and the model loader (built by scripts/fuzz.sh only).
// Every input must parse, or fail with an error; a crash, a sanitizer report or a hang is a finding.
import CartridgeFixtures
import CartridgeModel
import Foundation

/// `CARTRIDGES_FUZZ_SEED=FILE`: writes the tiny llama GGUF of the mutation test to FILE (a seed) and exits.
@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    guard let path = ProcessInfo.processInfo.environment["CARTRIDGES_FUZZ_SEED"] else { return 0 }
    do { try Data(TinyLlamaGGUF().bytes).write(to: URL(fileURLWithPath: path)) } catch { fatalError("cannot write the seed \(path): \(error)") }
    exit(0)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let gguf = try? GGUFFile(bytes: bytes, name: "fuzz.gguf") else { return 0 }
    // whatever parses goes through the typed getters, the dequantizers and the loader
    for name in gguf.tensorNames.prefix(16) { _ = try? gguf.floats(name) }
    for key in gguf.keys.prefix(64) {
        _ = try? gguf.int(key); _ = try? gguf.double(key); _ = try? gguf.strings(key); _ = try? gguf.ints(key)
    }
    guard let lm = try? LanguageModel(gguf: gguf) else { return 0 }
    let ids = lm.chatIDs([ChatMessage(.user, "ab c")])
    _ = try? lm.logits(ids: ids)
    _ = try? lm.generate(promptIDs: ids, maxTokens: 2)
    return 0
}
