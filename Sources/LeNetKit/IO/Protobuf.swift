// A protobuf writer for the few ONNX messages LeNetKit exports.
//
// Hand-written instead of swift-protobuf: the export needs seven messages
// and four wire types (varint, 32-bit, length-delimited), a hundred lines;
// swift-protobuf's runtime plus generated code for all of onnx.proto is tens
// of thousands of lines and a build-time plugin, for every package that
// depends on LeNetKit.

/// One protobuf message being written: fields are appended in the order
/// given (protobuf allows any order; ONNX's readers keep repeated fields in
/// the order written).
struct ProtobufMessage {
    private(set) var bytes: [UInt8] = []

    /// Wire types (protobuf encoding guide).
    private enum WireType: UInt64 { case varint = 0, fixed32 = 5, lengthDelimited = 2 }

    private mutating func key(_ field: Int, _ type: WireType) {
        varint(UInt64(field) << 3 | type.rawValue)
    }

    private mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    /// An int32, int64 or enum field; negative values take ten bytes (two's complement), as protobuf says.
    mutating func int(_ field: Int, _ value: Int) {
        key(field, .varint)
        varint(UInt64(bitPattern: Int64(value)))
    }

    /// A repeated int64 field, one key per element (the unpacked form, which every reader accepts).
    mutating func ints(_ field: Int, _ values: [Int]) {
        for v in values { int(field, v) }
    }

    mutating func float(_ field: Int, _ value: Float) {
        key(field, .fixed32)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func data(_ field: Int, _ value: [UInt8]) {
        key(field, .lengthDelimited)
        varint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    mutating func string(_ field: Int, _ value: String) {
        data(field, Array(value.utf8))
    }

    mutating func message(_ field: Int, _ value: ProtobufMessage) {
        data(field, value.bytes)
    }

    /// `build` writes a sub-message, which is then appended as `field`.
    mutating func message(_ field: Int, _ build: (inout ProtobufMessage) -> Void) {
        var sub = ProtobufMessage()
        build(&sub)
        message(field, sub)
    }
}
