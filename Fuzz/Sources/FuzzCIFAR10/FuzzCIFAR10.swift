// libFuzzer target: CIFAR10.parse, the reader of one binary batch file.
import LeNetKit

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCIFAR10(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    guard let (images, labels) = try? CIFAR10.parse(bytes, source: "fuzz") else { return 0 }
    // What parses is whole records with labels 0...9.
    if images.count != labels.count * 3 * 32 * 32 || labels.contains(where: { $0 > 9 }) || labels.isEmpty {
        fatalError("fuzz invariant: \(labels.count) labels, \(images.count) image bytes")
    }
    return 0
}
