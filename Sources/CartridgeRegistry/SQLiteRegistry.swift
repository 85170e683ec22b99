import CartridgeFormat
import CartridgeKernels
import Crypto
import Foundation
import GRDB

/// The embedded registry: an SQLite database (`registry.sqlite`, WAL) and a blob folder
/// (`blobs/ab/abcdef....cart`, named by SHA-256, so no name can forge a path). Safe for several
/// processes at once: each change is one immediate transaction (waiting up to 10 s for another
/// writer), and a cartridge's bytes are written and synced before the row that names them.
public final class SQLiteRegistry: CartridgeRegistry, @unchecked Sendable {
    public let directory: URL
    /// When set, a push must be a cartridge for this model.
    public let model: ModelIdentity?
    private let db: DatabasePool

    public init(directory: URL, model: ModelIdentity? = nil) throws {
        self.directory = directory
        self.model = model
        do {
            try FileManager.default.createDirectory(at: directory.appendingPathComponent("blobs"), withIntermediateDirectories: true)
            var config = Configuration()
            config.busyMode = .timeout(10)
            db = try DatabasePool(path: directory.appendingPathComponent("registry.sqlite").path, configuration: config)
            var migrator = DatabaseMigrator()
            migrator.registerMigration("v1") { db in
                try db.execute(sql: """
                    CREATE TABLE counters (name TEXT PRIMARY KEY, last_version INTEGER NOT NULL);
                    CREATE TABLE versions (name TEXT NOT NULL, version INTEGER NOT NULL, sha256 TEXT NOT NULL, parent INTEGER,
                                           created_at REAL NOT NULL, bytes INTEGER NOT NULL, PRIMARY KEY (name, version));
                    CREATE TABLE aliases (name TEXT NOT NULL, alias TEXT NOT NULL, target TEXT NOT NULL, updated_at REAL NOT NULL,
                                          PRIMARY KEY (name, alias));
                    CREATE TABLE alias_history (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, alias TEXT NOT NULL,
                                                target TEXT NOT NULL, replaced_at REAL NOT NULL);
                    """)
            }
            try migrator.migrate(db)
        } catch let e as DatabaseError {
            throw RegistryError.storage(path: directory.path, reason: e.description)
        } catch let e as CocoaError {
            throw RegistryError.storage(path: directory.path, reason: e.localizedDescription)
        }
    }

    public func file(of version: CartridgeVersion) -> URL {
        directory.appendingPathComponent("blobs/\(version.sha256.prefix(2))/\(version.sha256).cart")
    }

    public func push(name: String, bytes: [UInt8]) throws -> CartridgeVersion {
        try RegistryName.validate(name)
        _ = try CartFile.decode(bytes, path: "the pushed cartridge", expectedModel: model)  // whole file: checksums, tensors, model
        let sha = Hex.string(SHA256.hash(data: bytes))
        let blob = directory.appendingPathComponent("blobs/\(sha.prefix(2))/\(sha).cart")
        if !FileManager.default.fileExists(atPath: blob.path) {
            try storage {
                try FileManager.default.createDirectory(at: blob.deletingLastPathComponent(), withIntermediateDirectories: true)
                try atomicWrite(bytes, to: blob.path)
            }
        }
        return try write { db in
            let last = try Int.fetchOne(db, sql: "SELECT last_version FROM counters WHERE name = ?", arguments: [name])
            let newest = try Int.fetchOne(db, sql: "SELECT MAX(version) FROM versions WHERE name = ?", arguments: [name])
            let version = CartridgeVersion(name: name, version: (last ?? 0) + 1, sha256: sha, parent: newest,
                                           createdAt: Date(), bytes: bytes.count)
            try db.execute(sql: "INSERT INTO counters (name, last_version) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET last_version = excluded.last_version",
                           arguments: [name, version.version])
            try db.execute(sql: "INSERT INTO versions (name, version, sha256, parent, created_at, bytes) VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [name, version.version, sha, version.parent, version.createdAt.timeIntervalSince1970, version.bytes])
            return version
        }
    }

    public func names() throws -> [String] {
        try read { db in try String.fetchAll(db, sql: "SELECT DISTINCT name FROM versions ORDER BY name") }
    }

    public func versions(of name: String) throws -> [CartridgeVersion] {
        try RegistryName.validate(name)
        let all = try read { db in try Self.versions(db, name) }
        guard !all.isEmpty else { throw RegistryError.unknownName(name) }
        return all
    }

    public func aliases(of name: String) throws -> [CartridgeAlias] {
        try RegistryName.validate(name)
        return try read { db in
            try Row.fetchAll(db, sql: "SELECT alias, target, updated_at FROM aliases WHERE name = ? ORDER BY alias", arguments: [name]).map { row in
                CartridgeAlias(name: name, alias: row["alias"], target: try Self.decodeTarget(row["target"]),
                               updatedAt: Date(timeIntervalSince1970: row["updated_at"]))
            }
        }
    }

    public func setAlias(_ alias: String, of name: String, to target: AliasTarget) throws {
        try RegistryName.validate(name)
        try RegistryName.validate(alias, what: "alias")
        try target.validate()
        try write { db in
            let existing = Set(try Self.versions(db, name).map(\.version))
            guard !existing.isEmpty else { throw RegistryError.unknownName(name) }
            if let missing = target.versions.first(where: { !existing.contains($0) }) {
                throw RegistryError.unknownVersion(name: name, version: missing)
            }
            let now = Date().timeIntervalSince1970
            if let old = try String.fetchOne(db, sql: "SELECT target FROM aliases WHERE name = ? AND alias = ?", arguments: [name, alias]) {
                try db.execute(sql: "INSERT INTO alias_history (name, alias, target, replaced_at) VALUES (?, ?, ?, ?)", arguments: [name, alias, old, now])
            }
            try db.execute(sql: """
                INSERT INTO aliases (name, alias, target, updated_at) VALUES (?, ?, ?, ?)
                ON CONFLICT(name, alias) DO UPDATE SET target = excluded.target, updated_at = excluded.updated_at
                """, arguments: [name, alias, try Self.encodeTarget(target), now])
        }
    }

    public func rollback(alias: String, of name: String) throws -> AliasTarget {
        try RegistryName.validate(name)
        try RegistryName.validate(alias, what: "alias")
        return try write { db in
            guard try Int.fetchOne(db, sql: "SELECT 1 FROM aliases WHERE name = ? AND alias = ?", arguments: [name, alias]) != nil else {
                throw RegistryError.unknownAlias(name: name, alias: alias)
            }
            guard let row = try Row.fetchOne(db, sql: "SELECT id, target FROM alias_history WHERE name = ? AND alias = ? ORDER BY id DESC LIMIT 1",
                                             arguments: [name, alias]) else {
                throw RegistryError.noEarlierTarget(name: name, alias: alias)
            }
            let text: String = row["target"]
            let id: Int64 = row["id"]
            try db.execute(sql: "DELETE FROM alias_history WHERE id = ?", arguments: [id])
            try db.execute(sql: "UPDATE aliases SET target = ?, updated_at = ? WHERE name = ? AND alias = ?",
                           arguments: [text, Date().timeIntervalSince1970, name, alias])
            return try Self.decodeTarget(text)
        }
    }

    public func remove(name: String, version: Int) throws {
        try RegistryName.validate(name)
        let sha: String = try write { db in
            guard let sha = try String.fetchOne(db, sql: "SELECT sha256 FROM versions WHERE name = ? AND version = ?", arguments: [name, version]) else {
                throw RegistryError.unknownVersion(name: name, version: version)
            }
            let users = try Row.fetchAll(db, sql: "SELECT alias, target FROM aliases WHERE name = ? ORDER BY alias", arguments: [name])
                .filter { try Self.decodeTarget($0["target"]).versions.contains(version) }.map { $0["alias"] as String }
            guard users.isEmpty else { throw RegistryError.versionInUse(name: name, version: version, aliases: users) }
            try db.execute(sql: "DELETE FROM versions WHERE name = ? AND version = ?", arguments: [name, version])
            // a history entry naming the version could no longer be rolled back to
            let stale = try Row.fetchAll(db, sql: "SELECT id, target FROM alias_history WHERE name = ?", arguments: [name])
                .filter { try Self.decodeTarget($0["target"]).versions.contains(version) }.map { $0["id"] as Int64 }
            for id in stale { try db.execute(sql: "DELETE FROM alias_history WHERE id = ?", arguments: [id]) }
            let shared = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM versions WHERE sha256 = ?", arguments: [sha]) ?? 0
            return shared == 0 ? sha : ""
        }
        if !sha.isEmpty {  // no version names these bytes any more
            try? FileManager.default.removeItem(at: directory.appendingPathComponent("blobs/\(sha.prefix(2))/\(sha).cart"))
        }
    }

    public func resolve(_ reference: CartridgeReference, stickyKey: String? = nil) throws -> CartridgeVersion {
        let name = reference.name
        try RegistryName.validate(name)
        return try read { db in
            let all = try Self.versions(db, name)
            guard let newest = all.last else { throw RegistryError.unknownName(name) }
            func version(_ v: Int) throws -> CartridgeVersion {
                guard let found = all.first(where: { $0.version == v }) else { throw RegistryError.unknownVersion(name: name, version: v) }
                return found
            }
            func alias(_ a: String) throws -> AliasTarget? {
                try String.fetchOne(db, sql: "SELECT target FROM aliases WHERE name = ? AND alias = ?", arguments: [name, a]).map(Self.decodeTarget)
            }
            switch reference.selector {
            case let .version(v): return try version(v)
            case let .alias(a):
                guard let target = try alias(a) else { throw RegistryError.unknownAlias(name: name, alias: a) }
                return try version(target.pick(stickyKey: stickyKey, salt: "\(name):\(a)"))
            case .preferred:
                guard let target = try alias("stable") else { return newest }
                return try version(target.pick(stickyKey: stickyKey, salt: "\(name):stable"))
            }
        }
    }

    // MARK: storage

    private static func versions(_ db: Database, _ name: String) throws -> [CartridgeVersion] {
        try Row.fetchAll(db, sql: "SELECT * FROM versions WHERE name = ? ORDER BY version", arguments: [name]).map { row in
            CartridgeVersion(name: row["name"], version: row["version"], sha256: row["sha256"], parent: row["parent"],
                             createdAt: Date(timeIntervalSince1970: row["created_at"]), bytes: row["bytes"])
        }
    }

    private static func encodeTarget(_ target: AliasTarget) throws -> String {
        String(decoding: try JSONEncoder().encode(target), as: UTF8.self)
    }

    private static func decodeTarget(_ text: String) throws -> AliasTarget {
        do { return try JSONDecoder().decode(AliasTarget.self, from: Data(text.utf8)) } catch {
            throw RegistryError.storage(path: "aliases", reason: "an alias target does not decode: \(text)")
        }
    }

    private func storage<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as DatabaseError {
            throw RegistryError.storage(path: directory.path, reason: e.description)
        } catch let e as CocoaError {
            throw RegistryError.storage(path: directory.path, reason: e.localizedDescription)
        }
    }

    /// One immediate transaction: it takes the write lock first, so two processes never both read
    /// the same last version and then try to write.
    private func write<T>(_ body: (Database) throws -> T) throws -> T {
        try storage {
            try db.writeWithoutTransaction { db in
                var result: T?
                try db.inTransaction(.immediate) {
                    result = try body(db)
                    return .commit
                }
                return result!
            }
        }
    }

    private func read<T>(_ body: (Database) throws -> T) throws -> T {
        try storage { try db.read(body) }
    }
}
