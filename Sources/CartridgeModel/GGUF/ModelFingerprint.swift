import CartridgeKernels
import Crypto
import Foundation

/// The fingerprint of a frozen model: a SHA-256 over every tensor (name, type, shape and data
/// bytes) and the hyper-parameters. A fine-tuned model with the same shapes gets a different
/// fingerprint, so its cartridges are refused. With the model's name it makes the `ModelIdentity`
/// a cartridge records; the runtime and the compiler both take it from here.
///
/// Hashing ~100 MB takes a fraction of a second; results are cached per file (path, size,
/// modification time) under `$CARTRIDGES_HOME/fingerprints`.
public enum ModelFingerprint {
    /// The cache file's content.
    private struct Cached: Codable {
        var name: String
        var fingerprint: String
    }

    /// The fingerprint of a loaded model (lower-case hexadecimal), from the cache when the file
    /// has not changed.
    public static func fingerprint(of lm: LanguageModel) throws -> String {
        let attrs = try FileManager.default.attributesOfItem(atPath: lm.path)
        let size = (attrs[.size] as? NSNumber)?.intValue ?? 0
        let mtime = (attrs[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        let key = Hex.string(SHA256.hash(data: Data("\(URL(fileURLWithPath: lm.path).standardizedFileURL.path)|\(size)|\(mtime)".utf8)))
        let cacheFile = ModelLocation.home.appendingPathComponent("fingerprints/\(key).json")
        if let data = try? Data(contentsOf: cacheFile), let cached = try? JSONDecoder().decode(Cached.self, from: data) {
            return cached.fingerprint
        }
        let fingerprint = compute(gguf: lm.gguf, config: lm.config)
        if let data = try? JSONEncoder().encode(Cached(name: lm.config.name, fingerprint: fingerprint)) {
            try? FileManager.default.createDirectory(at: cacheFile.deletingLastPathComponent(), withIntermediateDirectories: true)
            try? data.write(to: cacheFile, options: .atomic)  // a cache: losing it costs one hash
        }
        return fingerprint
    }

    /// SHA-256 over the configuration (as sorted JSON, without the name) and every tensor in file order.
    public static func compute(gguf: GGUFFile, config: ModelConfig) -> String {
        var h = SHA256()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var hyper = config
        hyper.name = ""  // the name is reported beside the hash, not part of it
        h.update(data: (try? encoder.encode(hyper)) ?? Data())
        for name in gguf.tensorNames {
            guard let t = gguf.tensors[name], let bytes = try? gguf.data(name) else { continue }
            h.update(data: Data("\(name)|\(t.type.name)|\(t.shape)".utf8))
            h.update(bufferPointer: bytes)
        }
        return Hex.string(h.finalize())
    }
}
