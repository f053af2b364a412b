// libFuzzer target: IDX.parse on plain bytes. The first input byte picks the
// expected magic number (none, images, labels), so each path is explored.
import LeNetKit

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIDX(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data, size > 0 else { return 0 }
    let magic: UInt32? = [nil, IDX.imagesMagic, IDX.labelsMagic][Int(data[0]) % 3]
    let bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    guard let (dims, elements) = try? IDX.parse(bytes, expectedMagic: magic, subject: "fuzz") else { return 0 }
    // What parses holds exactly product(dims) elements.
    if elements.count != dims.reduce(1, *) {
        fatalError("fuzz invariant: \(elements.count) elements for dimensions \(dims)")
    }
    return 0
}
