import ArgumentParser
import CartridgeFormat
import CartridgeKernels
import CartridgeRegistry
import CartridgeRuntime
import Foundation

/// `cartridge registry ...`: named, versioned cartridges with aliases (see `CartridgeRegistry`).
struct RegistryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "registry",
        abstract: "Store cartridges by name and version; point aliases at versions or weighted splits; roll back.",
        discussion: "NAME alone means its stable alias if it has one, else its newest version; NAME@3 a version; NAME:canary an alias.",
        subcommands: [Push.self, List.self, Show.self, Alias.self, Rollback.self, Remove.self, Import.self])

    /// The registry folder every subcommand takes.
    struct Location: ParsableArguments {
        @Option(help: "Registry folder (default: $CARTRIDGES_HOME/registry).") var registry: String?

        func open(model: ModelIdentity? = nil) throws -> SQLiteRegistry {
            let dir = registry.map { URL(fileURLWithPath: $0) } ?? CartridgesHome.directory.appendingPathComponent("registry")
            return try registryCall { try SQLiteRegistry(directory: dir, model: model) }
        }
    }

    /// Pushes verify the file against the frozen model they will serve with.
    static func modelIdentity(_ options: ModelOptions) throws -> ModelIdentity {
        let lm = try options.load()
        return try registryCall { try CartridgeRuntime(model: lm).identity }
    }

    struct Push: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add FILE.cart as the next version of NAME; prints {\"name\",\"version\",\"sha256\"}.")
        @OptionGroup var location: Location
        @OptionGroup var model: ModelOptions
        @Argument(help: "Cartridge name.") var name: String
        @Argument(help: "The .cart file.") var file: String

        func run() throws {
            let bytes = try readFile(file)
            let registry = try location.open(model: try RegistryCommand.modelIdentity(model))
            let v = try registryCall { try registry.push(name: name, bytes: bytes) }
            try printJSON(["name": v.name, "version": v.version, "sha256": v.sha256])
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Push every DIR/NAME.cart as a new version of NAME.")
        @OptionGroup var location: Location
        @OptionGroup var model: ModelOptions
        @Argument(help: "A folder of .cart files.") var directory: String

        func run() throws {
            let files = try registryCall { try FileManager.default.contentsOfDirectory(atPath: directory) }.filter { $0.hasSuffix(".cart") }.sorted()
            guard !files.isEmpty else { throw CLIError("\(directory) holds no .cart files") }
            let registry = try location.open(model: try RegistryCommand.modelIdentity(model))
            var pushed: [[String: Any]] = []
            for f in files {
                let bytes = try readFile((directory as NSString).appendingPathComponent(f))
                let v = try registryCall { try registry.push(name: String(f.dropLast(5)), bytes: bytes) }
                pushed.append(["name": v.name, "version": v.version, "sha256": v.sha256])
            }
            try printJSON(pushed)
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every name with its newest version and aliases.")
        @OptionGroup var location: Location
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let registry = try location.open()
            let rows: [(String, [CartridgeVersion], [CartridgeAlias])] = try registryCall {
                try registry.names().map { ($0, try registry.versions(of: $0), try registry.aliases(of: $0)) }
            }
            if json {
                try printJSON(rows.map { name, versions, aliases in
                    ["name": name, "versions": versions.count, "newest": versions.last!.version,
                     "aliases": Dictionary(uniqueKeysWithValues: aliases.map { ($0.alias, RegistryJSON.target($0.target)) })] as [String: Any]
                })
            } else {
                for (name, versions, aliases) in rows {
                    let a = aliases.map { "\($0.alias) -> \($0.target)" }.joined(separator: ", ")
                    print("\(name)  \(versions.count) version\(versions.count == 1 ? "" : "s"), newest \(versions.last!.version)\(a.isEmpty ? "" : "  [\(a)]")")
                }
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A name's versions and aliases.")
        @OptionGroup var location: Location
        @Argument(help: "Cartridge name.") var name: String
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let registry = try location.open()
            let (versions, aliases) = try registryCall { (try registry.versions(of: name), try registry.aliases(of: name)) }
            if json {
                try printJSON(RegistryJSON.cartridge(name, versions: versions, aliases: aliases))
            } else {
                for v in versions { print("\(name)@\(v.version)  \(v.sha256)  \(v.bytes) bytes  parent \(v.parent.map(String.init) ?? "-")") }
                for a in aliases { print("\(name):\(a.alias) -> \(a.target)") }
            }
        }
    }

    struct Alias: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Point NAME:ALIAS at a version (--version N) or a split (--split 3:90,4:10).")
        @OptionGroup var location: Location
        @Argument(help: "Cartridge name.") var name: String
        @Argument(help: "Alias.") var alias: String
        @Option(help: "The version to point at.") var version: Int?
        @Option(help: "VERSION:WEIGHT pairs, e.g. 3:90,4:10.") var split: String?

        func run() throws {
            let target: AliasTarget
            switch (version, split) {
            case let (v?, nil): target = .version(v)
            case let (nil, s?): target = try registryCall { try AliasTarget.parseSplit(s) }
            default: throw ValidationError("give exactly one of --version and --split")
            }
            let registry = try location.open()
            try registryCall { try registry.setAlias(alias, of: name, to: target) }
            try printJSON(["name": name, "alias": alias, "target": RegistryJSON.target(target)])
        }
    }

    struct Rollback: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Point NAME:ALIAS back where it pointed before its last move.")
        @OptionGroup var location: Location
        @Argument(help: "Cartridge name.") var name: String
        @Argument(help: "Alias.") var alias: String

        func run() throws {
            let registry = try location.open()
            let target = try registryCall { try registry.rollback(alias: alias, of: name) }
            try printJSON(["name": name, "alias": alias, "target": RegistryJSON.target(target)])
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove NAME@N (refused while an alias points at it).")
        @OptionGroup var location: Location
        @Argument(help: "NAME@VERSION.") var reference: String

        func run() throws {
            let ref = try registryCall { try CartridgeReference(parsing: reference) }
            guard case let .version(v) = ref.selector else { throw CLIError("remove takes NAME@VERSION, not '\(reference)'") }
            let registry = try location.open()
            try registryCall { try registry.remove(name: ref.name, version: v) }
            try printJSON(["name": ref.name, "version": v, "removed": true])
        }
    }
}

/// Runs a registry or file operation, turning its typed error into the CLI's message.
func registryCall<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let e as CLIError { throw e } catch let e as CustomStringConvertible & Error {
        throw CLIError(e.description)
    } catch {
        throw CLIError(error.localizedDescription)
    }
}

private func readFile(_ path: String) throws -> [UInt8] {
    guard let data = FileManager.default.contents(atPath: path) else { throw CLIError("cannot read \(path)") }
    return [UInt8](data)
}
