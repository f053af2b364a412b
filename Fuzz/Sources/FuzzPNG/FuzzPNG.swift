// libFuzzer target: PNG.decode (libpng through CImageCodecs), then the rest
// of an image folder's path (conversion to RGB, a resize to 32×32), and a
// round trip through PNG.encode, which must give the same image back.
import LeNetKit

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPNG(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data, size > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let image = try? PNG.decode(bytes, subject: "fuzz") else { return 0 }
    if !(1...4).contains(image.channels) || image.pixels.count != image.width * image.height * image.channels
        || image.width * image.height > PNG.maximumPixels {
        fatalError("fuzz invariant: \(image.width)×\(image.height)×\(image.channels), \(image.pixels.count) samples")
    }
    guard let input = try? image.converted(toChannels: 3).resized(width: 32, height: 32), input.pixels.count == 3072 else {
        fatalError("fuzz invariant: a decoded image did not convert to 3×32×32")
    }
    // Small images only: encoding a large one would slow the fuzzer down.
    if image.pixels.count <= 1 << 16 {
        guard let again = try? PNG.decode(PNG.encode(image), subject: "round trip"), again == image else {
            fatalError("fuzz invariant: encode then decode changed a \(image.width)×\(image.height)×\(image.channels) image")
        }
    }
    return 0
}
