import CartridgeModel
import CartridgeRuntime
import CartridgeTestSupport
import Foundation
import XCTest

/// The real model and runtime, loaded once per test process.
enum RuntimeTestSupport {
    private static let loaded: Result<CartridgeRuntime, Error> = Result { try CartridgeRuntime(model: TestResources.model()) }

    static func runtime() throws -> CartridgeRuntime { try TestResources.require(loaded, "default model") }

    /// Three short documents on unrelated subjects.
    static let documents: [(String, String)] = [
        ("volcanoes.txt", "Volcanoes form where magma rises through the crust. When pressure builds, an eruption throws out lava, ash and gas. Basaltic lava flows are runny and travel far; andesitic lava is thick and explosive. Mount Etna in Sicily erupts almost every year."),
        ("baking.txt", "Sourdough bread rises thanks to a starter of wild yeast and lactic acid bacteria. Feed the starter flour and water daily. A long cold proof in the refrigerator deepens the flavour, and a hot Dutch oven gives a crisp crust."),
        ("chess.txt", "In chess, the Sicilian Defence answers 1.e4 with 1...c5. Castling moves the king two squares toward a rook, which jumps to the other side. A pawn that reaches the last rank is promoted, usually to a queen."),
    ]

    static func writeDocuments(_ docs: [(String, String)], into dir: URL) throws {
        for (name, text) in docs { try text.write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8) }
    }
}
