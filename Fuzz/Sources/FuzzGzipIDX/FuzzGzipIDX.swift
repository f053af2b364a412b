// libFuzzer target: Gzip.decompress, and IDX.parse on what it decodes (and
// on the compressed bytes themselves, which IDX.parse gunzips when they
// start with the gzip magic number).
import LeNetKit

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGzipIDX(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    if let decoded = try? Gzip.decompress(bytes, subject: "fuzz") {
        _ = try? IDX.parse(decoded, expectedMagic: nil, subject: "fuzz")
    }
    if let (dims, elements) = try? IDX.parse(bytes, expectedMagic: nil, subject: "fuzz"),
       elements.count != dims.reduce(1, *) {
        fatalError("fuzz invariant: \(elements.count) elements for dimensions \(dims)")
    }
    return 0
}
