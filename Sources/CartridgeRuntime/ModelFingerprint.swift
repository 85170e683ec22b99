import CartridgeFormat
import CartridgeKernels
import CartridgeModel
import Crypto
import Foundation

/// The identity of a frozen model: its name and a SHA-256 over every tensor (name, type, shape
/// and data bytes) and the hyper-parameters. A fine-tuned model with the same shapes gets a
/// different fingerprint, so its cartridges are refused.
///
/// Hashing ~100 MB takes a fraction of a second; results are cached per file (path, size,
/// modification time) under `$CARTRIDGES_HOME/fingerprints`.
public enum ModelFingerprint {
    public static func identity(of lm: LanguageModel) throws -> ModelIdentity {
        let attrs = try FileManager.default.attributesOfItem(atPath: lm.path)
        let size = (attrs[.size] as? NSNumber)?.intValue ?? 0
        let mtime = (attrs[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        let key = Hex.string(SHA256.hash(data: Data("\(URL(fileURLWithPath: lm.path).standardizedFileURL.path)|\(size)|\(mtime)".utf8)))
        let cacheFile = ModelLocation.home.appendingPathComponent("fingerprints/\(key).json")
        if let data = try? Data(contentsOf: cacheFile), let id = try? JSONDecoder().decode(ModelIdentity.self, from: data) {
            return id
        }
        let id = compute(gguf: lm.gguf, config: lm.config)
        if let data = try? JSONEncoder().encode(id) {
            try? FileManager.default.createDirectory(at: cacheFile.deletingLastPathComponent(), withIntermediateDirectories: true)
            try? data.write(to: cacheFile, options: .atomic)
        }
        return id
    }

    /// SHA-256 over the configuration (as sorted JSON) and every tensor in file order.
    public static func compute(gguf: GGUFFile, config: ModelConfig) -> ModelIdentity {
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
        return ModelIdentity(name: config.name, fingerprint: Hex.string(h.finalize()))
    }
}
