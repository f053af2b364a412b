// libFuzzer target: SafetensorsFile.parse must throw a LeNetError or return
// a file that re-encodes, for any bytes; it must never trap or touch memory
// it does not own (AddressSanitizer checks the latter).
import LeNetKit

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafetensors(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    guard let file = try? SafetensorsFile.parse(bytes, source: "fuzz") else { return 0 }
    // Whatever parses is a valid file: every tensor's values fill its shape,
    // and writing it back and reading that gives the same tensors.
    for tensor in file.tensors where tensor.values.count != tensor.shape.reduce(1, *) {
        fuzzFailure("tensor '\(tensor.name)' has \(tensor.values.count) values for shape \(tensor.shape)")
    }
    // (Compared by name: empty tensors cover no bytes, so their place in the
    // data order is not kept; parse sorts ties by name.)
    if let encoded = try? file.encoded() {
        let shapes = { (f: SafetensorsFile) in Dictionary(f.tensors.map { ($0.name, $0.shape) }, uniquingKeysWith: { a, _ in a }) }
        guard let again = try? SafetensorsFile.parse(encoded, source: "fuzz-again"),
              again.tensors.count == file.tensors.count, shapes(again) == shapes(file),
              again.metadata == file.metadata else {
            fuzzFailure("a parsed file does not survive encoding and parsing again")
        }
    }
    return 0
}

/// Reports a broken invariant as a crash, which libFuzzer saves as an input.
func fuzzFailure(_ message: String) -> Never {
    fatalError("fuzz invariant: \(message)")
}
