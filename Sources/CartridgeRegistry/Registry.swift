import Foundation

/// A cartridge name: lower-case letters, digits, `.`, `_` and `-`, starting with a letter or a
/// digit, at most 64 characters. Aliases follow the same rule.
public enum RegistryName {
    public static func validate(_ name: String, what: String = "name") throws {
        let ok = (1...64).contains(name.utf8.count) && name.utf8.enumerated().allSatisfy { i, c in
            (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || (i > 0 && (c == 0x2E || c == 0x5F || c == 0x2D))
        }
        guard ok else { throw RegistryError.invalidName(what: what, name: name) }
    }
}

/// What a reference names: `NAME` (its `stable` alias, else its newest version), `NAME@3` (a
/// version) or `NAME:canary` (an alias).
public struct CartridgeReference: Equatable, Sendable, CustomStringConvertible {
    public enum Selector: Equatable, Sendable {
        case preferred
        case version(Int)
        case alias(String)
    }

    public let name: String
    public let selector: Selector

    public init(name: String, selector: Selector = .preferred) {
        self.name = name
        self.selector = selector
    }

    /// Parses `NAME`, `NAME@N` or `NAME:ALIAS`, validating the name and the alias.
    public init(parsing text: String) throws {
        if let at = text.firstIndex(of: "@") {
            name = String(text[..<at])
            guard let v = Int(text[text.index(after: at)...]), v >= 1 else { throw RegistryError.invalidReference(text) }
            selector = .version(v)
        } else if let colon = text.firstIndex(of: ":") {
            name = String(text[..<colon])
            let alias = String(text[text.index(after: colon)...])
            try RegistryName.validate(alias, what: "alias")
            selector = .alias(alias)
        } else {
            name = text
            selector = .preferred
        }
        try RegistryName.validate(name)
    }

    public var description: String {
        switch selector {
        case .preferred: return name
        case let .version(v): return "\(name)@\(v)"
        case let .alias(a): return "\(name):\(a)"
        }
    }
}

/// One immutable version of a named cartridge; its bytes are stored under their SHA-256.
public struct CartridgeVersion: Codable, Equatable, Sendable {
    public let name: String
    public let version: Int
    public let sha256: String
    /// The version this one was pushed after (the newest one at the time), if any.
    public let parent: Int?
    public let createdAt: Date
    public let bytes: Int
}

/// Where an alias points: one version, or a weighted split of versions (an A/B test).
public enum AliasTarget: Codable, Equatable, Sendable, CustomStringConvertible {
    case version(Int)
    case split([SplitShare])

    public struct SplitShare: Codable, Equatable, Sendable {
        public let version: Int
        public let weight: Int
        public init(version: Int, weight: Int) {
            self.version = version
            self.weight = weight
        }
    }

    /// The versions it can resolve to.
    public var versions: [Int] {
        switch self {
        case let .version(v): return [v]
        case let .split(shares): return shares.map(\.version)
        }
    }

    /// Parses `3:90,4:10` (version:weight pairs).
    public static func parseSplit(_ text: String) throws -> AliasTarget {
        let shares = try text.split(separator: ",").map { part -> SplitShare in
            let f = part.split(separator: ":")
            guard f.count == 2, let v = Int(f[0]), let w = Int(f[1]) else { throw RegistryError.invalidSplit(text) }
            return SplitShare(version: v, weight: w)
        }
        let target = AliasTarget.split(shares)
        try target.validate()
        return target
    }

    func validate() throws {
        if case let .split(shares) = self {
            guard !shares.isEmpty, shares.allSatisfy({ $0.version >= 1 && $0.weight >= 1 && $0.weight <= 1_000_000 }),
                  Set(shares.map(\.version)).count == shares.count else {
                throw RegistryError.invalidSplit(description)
            }
        } else if case let .version(v) = self, v < 1 {
            throw RegistryError.unknownVersion(name: "", version: v)
        }
    }

    public var description: String {
        switch self {
        case let .version(v): return "version \(v)"
        case let .split(shares): return shares.map { "\($0.version):\($0.weight)" }.joined(separator: ",")
        }
    }

    /// The version a request gets: the version itself, or a draw by weight. With a `stickyKey`
    /// (a user id) the draw is a hash of it, so one user keeps getting the same version.
    public func pick(stickyKey: String?, salt: String) -> Int {
        switch self {
        case let .version(v): return v
        case let .split(shares):
            let total = shares.reduce(0) { $0 + $1.weight }
            var point: Int
            if let key = stickyKey {
                var h: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a of salt and key
                for b in (salt + "\u{0}" + key).utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
                point = Int(h % UInt64(total))
            } else {
                point = Int.random(in: 0..<total)
            }
            for s in shares {
                if point < s.weight { return s.version }
                point -= s.weight
            }
            return shares[shares.count - 1].version
        }
    }
}

/// An alias of a name and where it points now.
public struct CartridgeAlias: Codable, Equatable, Sendable {
    public let name: String
    public let alias: String
    public let target: AliasTarget
    public let updatedAt: Date
}

/// Why a registry operation failed. Every case names the cartridge, version or alias at fault.
public enum RegistryError: Error, CustomStringConvertible, Equatable {
    case invalidName(what: String, name: String)
    case invalidReference(String)
    case invalidSplit(String)
    case unknownName(String)
    case unknownVersion(name: String, version: Int)
    case unknownAlias(name: String, alias: String)
    case versionInUse(name: String, version: Int, aliases: [String])
    case noEarlierTarget(name: String, alias: String)
    case invalidCartridge(reason: String)
    case storage(path: String, reason: String)

    public var description: String {
        switch self {
        case let .invalidName(what, name):
            return "invalid \(what) '\(name)': use 1 to 64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit"
        case let .invalidReference(r): return "invalid cartridge reference '\(r)': use NAME, NAME@VERSION or NAME:ALIAS"
        case let .invalidSplit(s): return "invalid split '\(s)': use distinct VERSION:WEIGHT pairs with positive weights, e.g. 3:90,4:10"
        case let .unknownName(n): return "no cartridge named '\(n)' in the registry"
        case let .unknownVersion(n, v): return "cartridge '\(n)' has no version \(v)"
        case let .unknownAlias(n, a): return "cartridge '\(n)' has no alias '\(a)'"
        case let .versionInUse(n, v, aliases): return "\(n)@\(v) is in use by alias \(aliases.joined(separator: ", ")); move those aliases first"
        case let .noEarlierTarget(n, a): return "alias \(n):\(a) has never pointed anywhere else; there is nothing to roll back to"
        case let .invalidCartridge(reason): return "not pushed: \(reason)"
        case let .storage(path, reason): return "registry storage \(path): \(reason)"
        }
    }
}

/// A registry of named, versioned cartridges with aliases. Implementations must be safe for
/// several processes at once (a server and CLI commands on the same registry): every change is
/// one transaction, and a cartridge's bytes are stored before the row that names them.
public protocol CartridgeRegistry: Sendable {
    /// Stores `bytes` as the next version of `name` (content-addressed, deduplicated).
    func push(name: String, bytes: [UInt8]) throws -> CartridgeVersion
    /// Every name, sorted.
    func names() throws -> [String]
    /// The versions of `name`, oldest first (throws `unknownName` when it has none).
    func versions(of name: String) throws -> [CartridgeVersion]
    /// The aliases of `name`, sorted by alias.
    func aliases(of name: String) throws -> [CartridgeAlias]
    /// Points an alias at a version or a split, keeping where it pointed before in its history.
    func setAlias(_ alias: String, of name: String, to target: AliasTarget) throws
    /// Points the alias back where it pointed before its last move; returns the target.
    func rollback(alias: String, of name: String) throws -> AliasTarget
    /// Removes a version no alias points at (its bytes stay while another version shares them).
    func remove(name: String, version: Int) throws
    /// The version a reference means now; a split alias draws by weight (sticky per `stickyKey`).
    func resolve(_ reference: CartridgeReference, stickyKey: String?) throws -> CartridgeVersion
    /// The file holding a version's bytes.
    func file(of version: CartridgeVersion) -> URL
}
