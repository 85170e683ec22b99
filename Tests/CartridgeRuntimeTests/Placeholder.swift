import XCTest

final class CartridgeRuntimePlaceholderTests: XCTestCase {
    func testModuleBuilds() {}
}
