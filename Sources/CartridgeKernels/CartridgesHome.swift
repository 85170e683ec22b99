import Foundation

/// The folder of installed files (the default model, the retrieval embedder, cached model
/// fingerprints): `$CARTRIDGES_HOME`, or `~/.cache/cartridges`. Every module resolves it here.
public enum CartridgesHome {
    public static var directory: URL {
        if let h = ProcessInfo.processInfo.environment["CARTRIDGES_HOME"], !h.isEmpty { return URL(fileURLWithPath: h) }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/cartridges")
    }
}
