import XCTest

final class CartridgeFormatPlaceholderTests: XCTestCase {
    func testModuleBuilds() {}
}
