import XCTest

final class CartridgeEmbeddingPlaceholderTests: XCTestCase {
    func testModuleBuilds() {}
}
