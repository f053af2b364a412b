// libFuzzer target: JPEG.decode (libjpeg-turbo through CImageCodecs), then
// the rest of an image folder's path: conversion to RGB and a resize to
// 32×32. A decoder error is a LeNetError, never a trap or a longjmp into Swift.
import LeNetKit

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJPEG(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data, size > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let image = try? JPEG.decode(bytes, subject: "fuzz") else { return 0 }
    // What decodes is 1 or 3 channels of exactly W × H, within the limit.
    if !(image.channels == 1 || image.channels == 3) || image.pixels.count != image.width * image.height * image.channels
        || image.width * image.height > PNG.maximumPixels {
        fatalError("fuzz invariant: \(image.width)×\(image.height)×\(image.channels), \(image.pixels.count) samples")
    }
    guard let input = try? image.converted(toChannels: 3).resized(width: 32, height: 32), input.pixels.count == 3072 else {
        fatalError("fuzz invariant: a decoded image did not convert to 3×32×32")
    }
    return 0
}
