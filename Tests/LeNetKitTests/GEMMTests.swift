import XCTest
@testable import LeNetKit
final class GEMMSmoke: XCTestCase { func testNothing() {} }
