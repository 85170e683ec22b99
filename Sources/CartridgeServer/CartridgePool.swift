import CartridgeRegistry
import CartridgeRuntime
import Foundation
import Logging

/// Cartridge versions loaded in memory, shared by every request that uses them. A request pins
/// the versions it resolved for its whole life; versions no request pins are dropped least
/// recently used first once their bytes pass the budget. Keyed by SHA-256, so two names or
/// versions with the same bytes share one copy, and a version's bytes can never change under it.
final class CartridgePool: @unchecked Sendable {
    private struct Slot {
        var cartridge: LoadedCartridge
        var pins: Int
        var lastUse: UInt64
    }

    private let runtime: CartridgeRuntime
    private let registry: any CartridgeRegistry
    let budget: Int
    private var slots: [String: Slot] = [:]
    private var clock: UInt64 = 0
    private let lock = NSLock()
    private let logger: Logger

    init(runtime: CartridgeRuntime, registry: any CartridgeRegistry, budget: Int, logger: Logger) {
        self.runtime = runtime
        self.registry = registry
        self.budget = budget
        self.logger = logger
    }

    /// The version's tensors, pinned until `release`. Loads (and verifies against the model) on a miss.
    func acquire(_ version: CartridgeVersion) throws -> LoadedCartridge {
        lock.lock()
        defer { lock.unlock() }
        clock += 1
        if var slot = slots[version.sha256] {
            slot.pins += 1
            slot.lastUse = clock
            slots[version.sha256] = slot
            return slot.cartridge
        }
        let loaded = try runtime.load(registry.file(of: version))
        slots[version.sha256] = Slot(cartridge: loaded, pins: 1, lastUse: clock)
        logger.debug("loaded \(version.name)@\(version.version) (\(loaded.bytes) bytes)")
        evict()
        return loaded
    }

    /// Every version's tensors, pinned until `release`; on a failure none stays pinned.
    func acquire(_ versions: [CartridgeVersion]) throws -> [LoadedCartridge] {
        var loaded: [LoadedCartridge] = []
        do {
            for v in versions { loaded.append(try acquire(v)) }
        } catch {
            release(Array(versions.prefix(loaded.count)))
            throw error
        }
        return loaded
    }

    /// Unpins versions `acquire` returned.
    func release(_ versions: [CartridgeVersion]) {
        lock.lock()
        defer { lock.unlock() }
        for v in versions {
            guard var slot = slots[v.sha256] else { continue }
            slot.pins -= 1
            slots[v.sha256] = slot
        }
        evict()
    }

    /// Bytes of tensors and number of versions held now.
    var usage: (bytes: Int, count: Int) {
        lock.lock()
        defer { lock.unlock() }
        return (slots.values.reduce(0) { $0 + $1.cartridge.bytes }, slots.count)
    }

    /// Drops unpinned versions, least recently used first, while over budget. Caller holds the lock.
    private func evict() {
        var total = slots.values.reduce(0) { $0 + $1.cartridge.bytes }
        guard total > budget else { return }
        for (sha, slot) in slots.filter({ $0.value.pins == 0 }).sorted(by: { $0.value.lastUse < $1.value.lastUse }) {
            guard total > budget else { break }
            slots[sha] = nil
            total -= slot.cartridge.bytes
            logger.debug("evicted cartridge \(sha.prefix(12)) from memory")
        }
    }
}
