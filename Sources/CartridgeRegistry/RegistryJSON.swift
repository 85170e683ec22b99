import Foundation

/// The JSON shapes of registry objects, shared by `cartridge registry ... --json` and the
/// server's admin routes (objects for `JSONSerialization`).
public enum RegistryJSON {
    /// `{"name","version","sha256","parent","created","bytes"}` (`created` in Unix seconds).
    public static func version(_ v: CartridgeVersion) -> [String: Any] {
        ["name": v.name, "version": v.version, "sha256": v.sha256, "parent": v.parent as Any? ?? NSNull(),
         "created": Int(v.createdAt.timeIntervalSince1970), "bytes": v.bytes]
    }

    /// `{"version": N}` or `{"split": [{"version": N, "weight": W}, ...]}`.
    public static func target(_ t: AliasTarget) -> [String: Any] {
        switch t {
        case let .version(v): return ["version": v]
        case let .split(shares): return ["split": shares.map { ["version": $0.version, "weight": $0.weight] }]
        }
    }

    /// `{"alias","target","updated"}`.
    public static func alias(_ a: CartridgeAlias) -> [String: Any] {
        ["alias": a.alias, "target": target(a.target), "updated": Int(a.updatedAt.timeIntervalSince1970)]
    }

    /// A name with all its versions and aliases: `{"name","versions":[...],"aliases":[...]}`.
    public static func cartridge(_ name: String, versions: [CartridgeVersion], aliases: [CartridgeAlias]) -> [String: Any] {
        ["name": name, "versions": versions.map(version), "aliases": aliases.map(alias)]
    }
}
