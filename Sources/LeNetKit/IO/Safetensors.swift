import Foundation

// The Hugging Face safetensors format, read and written with our own code:
//
//     [8 bytes]  N, the header length, a little-endian UInt64
//     [N bytes]  a UTF-8 JSON object, padded with trailing spaces:
//                  {"__metadata__": {"key": "value", ...},          (optional)
//                   "name": {"dtype": "F32", "shape": [2, 3],
//                            "data_offsets": [begin, end]}, ...}
//     [rest]     the data section: each tensor's elements, row-major and
//                little-endian, at bytes begin..<end counted from the
//                start of the data section
//
// We write F32 only. We read F32, and also F64, F16 and BF16 by converting
// each element to Float, so that a checkpoint saved from numpy's default
// float64 arrays or from a half-precision model still loads.

/// One named tensor of a safetensors file: its shape and its elements in
/// row-major order.
struct SafetensorsTensor: Sendable, Equatable {
    /// The tensor's key in the file, for example `conv1.weight`.
    var name: String
    /// The dimensions, outermost first; `[]` is a scalar holding one value.
    var shape: [Int]
    /// `shape.reduce(1, *)` elements, row-major.
    var values: [Float]

    /// - Parameters:
    ///   - name: The tensor's key in the file; non-empty, unique in a file.
    ///   - shape: The dimensions, outermost first; `[]` for a scalar.
    ///   - values: The elements in row-major order, `shape.reduce(1, *)` of them.
    init(name: String, shape: [Int], values: [Float]) {
        self.name = name
        self.shape = shape
        self.values = values
    }
}

/// A safetensors file in memory: its tensors, in the order of their data in
/// the file, and the string-to-string `__metadata__` of its header.
///
/// Reading checks every field of the header against the file and throws a
/// `LeNetError` naming the file and the problem; it never traps on a bad
/// file. Writing is atomic: the target is either the old file or the
/// complete new one, never a partial write.
struct SafetensorsFile: Sendable {
    /// The tensors: in the order of their data when read; written in this order.
    var tensors: [SafetensorsTensor]
    /// The header's `__metadata__` object; written only when not empty.
    var metadata: [String: String]

    /// - Parameters:
    ///   - tensors: The tensors, in the order they are to be written.
    ///   - metadata: Free-form strings stored in the header's `__metadata__`.
    init(tensors: [SafetensorsTensor], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    /// The tensor called `name`, or nil if there is none.
    subscript(name: String) -> SafetensorsTensor? {
        tensors.first { $0.name == name }
    }

    /// Headers larger than this are refused before anything is allocated for
    /// them; the reference implementation uses the same limit.
    static let maxHeaderLength: UInt64 = 100_000_000

    // MARK: Reading

    /// Reads and checks the safetensors file at `path`.
    ///
    /// - Parameter path: The file to read.
    /// - Returns: The file's tensors in the order of their data, and its metadata.
    /// - Throws: `LeNetError` naming `path` when the file cannot be read or
    ///   is not a valid safetensors file (see `parse(_:source:)`).
    static func read(path: String) throws -> SafetensorsFile {
        let bytes = try FileIO.readAll(path: path)
        return try parse(bytes, source: path)
    }

    /// Parses and checks the bytes of a safetensors file.
    ///
    /// Every tensor must have a `dtype` (`F32`; `F64`, `F16` and `BF16` are
    /// converted to Float), a `shape` of non-negative integers and
    /// `data_offsets` `[begin, end]` inside the data section, spanning exactly
    /// `product(shape) * size(dtype)` bytes and overlapping no other tensor.
    /// `__metadata__`, if present, must map strings to strings. Bytes of the
    /// data section that no tensor covers (gaps, trailing bytes) are ignored,
    /// as other readers do.
    ///
    /// - Parameters:
    ///   - bytes: The whole file.
    ///   - source: The file name (or any label) used as the subject of errors.
    /// - Returns: The tensors, sorted by where their data begins, and the metadata.
    /// - Throws: `LeNetError` with `subject: source`, saying which check failed.
    static func parse(_ bytes: [UInt8], source: String) throws -> SafetensorsFile {
        func failure(_ message: String) -> LeNetError { LeNetError(message, subject: source) }

        // The header length, checked against the file before anything is
        // allocated for the header.
        guard bytes.count >= 8 else {
            throw failure("file is \(bytes.count) bytes long; a safetensors file starts with an 8-byte header length")
        }
        var headerLength: UInt64 = 0
        for i in 0..<8 { headerLength |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw failure("header length \(headerLength) exceeds the file size \(bytes.count)")
        }
        guard headerLength <= maxHeaderLength else {
            throw failure("header length \(headerLength) exceeds the limit of 100 MB")
        }
        let dataStart = 8 + Int(headerLength)
        let dataSize = bytes.count - dataStart

        // The header: UTF-8 JSON holding an object.
        let headerBytes = bytes[8..<dataStart]
        guard String(decoding: headerBytes, as: UTF8.self).utf8.elementsEqual(headerBytes) else {
            throw failure("header is not valid UTF-8")
        }
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: Data(headerBytes), options: .fragmentsAllowed)
        } catch {
            let detail = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String
            throw failure("header is not valid JSON" + (detail.map { " (\($0))" } ?? ""))
        }
        guard let header = json as? [String: Any] else {
            throw failure("header is not a JSON object but \(SafetensorsJSON.render(json))")
        }

        // Each entry, in name order so that the first error reported does
        // not depend on dictionary order.
        var metadata: [String: String] = [:]
        var entries: [SafetensorsEntry] = []
        for (name, value) in header.sorted(by: { $0.key < $1.key }) {
            if name == "__metadata__" {
                metadata = try parseMetadata(value, failure: failure)
            } else {
                entries.append(try parseEntry(name: name, value: value, dataSize: dataSize, failure: failure))
            }
        }

        // File order is data order. Empty tensors cover no bytes, so they
        // cannot overlap anything.
        entries.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        var previous: SafetensorsEntry?
        for entry in entries where entry.end > entry.begin {
            if let previous, entry.begin < previous.end {
                throw failure("tensors '\(previous.name)' and '\(entry.name)' overlap in the data section "
                    + "(data_offsets [\(previous.begin), \(previous.end)] and [\(entry.begin), \(entry.end)])")
            }
            previous = entry
        }

        let tensors = bytes.withUnsafeBytes { file in
            entries.map { entry in
                let data = UnsafeRawBufferPointer(rebasing: file[(dataStart + entry.begin)..<(dataStart + entry.end)])
                return SafetensorsTensor(name: entry.name, shape: entry.shape,
                                         values: SafetensorsDecode.values(data, dtype: entry.dtype, count: entry.count))
            }
        }
        return SafetensorsFile(tensors: tensors, metadata: metadata)
    }

    private static func parseMetadata(_ value: Any, failure: (String) -> LeNetError) throws -> [String: String] {
        guard let object = value as? [String: Any] else {
            throw failure("__metadata__ is not a JSON object but \(SafetensorsJSON.render(value))")
        }
        var metadata: [String: String] = [:]
        for (key, item) in object.sorted(by: { $0.key < $1.key }) {
            guard let text = item as? String else {
                throw failure("__metadata__ value of '\(key)' is not a string but \(SafetensorsJSON.render(item))")
            }
            metadata[key] = text
        }
        return metadata
    }

    private static func parseEntry(
        name: String, value: Any, dataSize: Int, failure: (String) -> LeNetError
    ) throws -> SafetensorsEntry {
        let tensor = "tensor '\(name)'"
        guard let fields = value as? [String: Any] else {
            throw failure("\(tensor) is not a JSON object but \(SafetensorsJSON.render(value))")
        }

        guard let dtypeValue = fields["dtype"] else { throw failure("\(tensor) has no dtype") }
        guard let dtypeName = dtypeValue as? String else {
            throw failure("\(tensor) has dtype \(SafetensorsJSON.render(dtypeValue)), which is not a string")
        }
        guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
            throw failure("\(tensor) has dtype \(dtypeName); only F32 is supported (F64, F16 and BF16 are converted)")
        }

        guard let shapeValue = fields["shape"] else { throw failure("\(tensor) has no shape") }
        guard let dims = shapeValue as? [Any] else {
            throw failure("\(tensor) has shape \(SafetensorsJSON.render(shapeValue)), which is not an array")
        }
        var shape: [Int] = []
        for dim in dims {
            guard let size = SafetensorsJSON.integer(dim), size >= 0 else {
                throw failure("\(tensor) has shape \(SafetensorsJSON.render(shapeValue)); "
                    + "dimensions must be non-negative integers")
            }
            shape.append(size)
        }

        guard let offsetsValue = fields["data_offsets"] else { throw failure("\(tensor) has no data_offsets") }
        guard let offsets = offsetsValue as? [Any], offsets.count == 2,
              let begin = SafetensorsJSON.integer(offsets[0]), let end = SafetensorsJSON.integer(offsets[1]),
              begin >= 0, end >= 0
        else {
            throw failure("\(tensor) has data_offsets \(SafetensorsJSON.render(offsetsValue)); "
                + "expected [begin, end], two non-negative integers")
        }
        guard begin <= end else {
            throw failure("\(tensor) has data_offsets [\(begin), \(end)] whose end is before its begin")
        }
        guard end <= dataSize else {
            throw failure("\(tensor) has data_offsets [\(begin), \(end)] beyond the end of the data section "
                + "(\(dataSize) bytes)")
        }

        // product(shape) * size(dtype), without overflowing on a hostile shape.
        var count = 1
        var byteCount = dtype.size
        for size in shape {
            let (newCount, countOverflow) = count.multipliedReportingOverflow(by: size)
            let (newBytes, bytesOverflow) = byteCount.multipliedReportingOverflow(by: size)
            guard !countOverflow, !bytesOverflow else {
                throw failure("\(tensor) has shape \(shape), which has too many elements")
            }
            count = newCount
            byteCount = newBytes
        }
        guard end - begin == byteCount else {
            throw failure("\(tensor) has shape \(shape) (\(count) elements, \(byteCount) bytes as \(dtypeName)) "
                + "but data_offsets [\(begin), \(end)] span \(end - begin) bytes")
        }
        return SafetensorsEntry(name: name, dtype: dtype, shape: shape, count: count, begin: begin, end: end)
    }

    // MARK: Writing

    /// The file's bytes: the header length, the JSON header padded with
    /// spaces to a multiple of 8 bytes, then each tensor's values as
    /// little-endian F32 in the order of `tensors`.
    ///
    /// The output is byte-reproducible: tensors appear in the header in the
    /// order of `tensors` (fields `dtype`, `shape`, `data_offsets`), after
    /// `__metadata__` with its keys sorted; `__metadata__` is left out when
    /// `metadata` is empty.
    ///
    /// - Throws: `LeNetError` if a name is empty, repeated or `__metadata__`,
    ///   a dimension is negative, or `values.count != product(shape)`.
    func encoded() throws -> [UInt8] {
        try encoded(subject: nil)
    }

    private func encoded(subject: String?) throws -> [UInt8] {
        func failure(_ message: String) -> LeNetError { LeNetError(message, subject: subject) }

        var names = Set<String>()
        for tensor in tensors {
            guard !tensor.name.isEmpty else { throw failure("a tensor has an empty name") }
            guard tensor.name != "__metadata__" else {
                throw failure("a tensor cannot be called '__metadata__'; the header uses that key for metadata")
            }
            guard names.insert(tensor.name).inserted else {
                throw failure("two tensors are called '\(tensor.name)'")
            }
            guard tensor.shape.allSatisfy({ $0 >= 0 }) else {
                throw failure("tensor '\(tensor.name)' has shape \(tensor.shape) with a negative dimension")
            }
            var count = 1
            for size in tensor.shape {
                let (product, overflow) = count.multipliedReportingOverflow(by: size)
                guard !overflow else {
                    throw failure("tensor '\(tensor.name)' has shape \(tensor.shape), which has too many elements")
                }
                count = product
            }
            guard tensor.values.count == count else {
                throw failure("tensor '\(tensor.name)' has \(tensor.values.count) values but shape \(tensor.shape) "
                    + "needs \(count)")
            }
        }

        var entries: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.keys.sorted().map { key in
                SafetensorsJSON.quoted(key) + ":" + SafetensorsJSON.quoted(metadata[key] ?? "")
            }
            entries.append("\"__metadata__\":{" + pairs.joined(separator: ",") + "}")
        }
        var offset = 0
        for tensor in tensors {
            let end = offset + 4 * tensor.values.count
            let shape = tensor.shape.map(String.init).joined(separator: ",")
            entries.append(SafetensorsJSON.quoted(tensor.name)
                + ":{\"dtype\":\"F32\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        var header = Array(("{" + entries.joined(separator: ",") + "}").utf8)
        // Pad so that the data section starts 8-byte aligned, as other writers do.
        header.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - header.count % 8) % 8))

        var bytes: [UInt8] = []
        bytes.reserveCapacity(8 + header.count + offset)
        for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: UInt64(header.count) >> (8 * UInt64(i)))) }
        bytes.append(contentsOf: header)
        for tensor in tensors {
            #if _endian(little)
            tensor.values.withUnsafeBytes { bytes.append(contentsOf: $0) }
            #else
            for value in tensor.values {
                withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
            }
            #endif
        }
        return bytes
    }

    /// Writes the file to `path` atomically.
    ///
    /// The bytes of `encoded()` go to a temporary file in the same directory,
    /// which is flushed to disk with `fsync` and then renamed over `path`. On
    /// any failure the temporary file is removed and whatever was at `path`
    /// before is left as it was.
    ///
    /// - Parameter path: The file to create or replace.
    /// - Throws: `LeNetError` naming `path` if `encoded()` fails or the
    ///   directory is missing or not writable, the disk is full, or the
    ///   rename fails.
    func write(path: String) throws {
        let bytes = try encoded(subject: path)
        try FileIO.writeAtomically(bytes, to: path)
    }
}

// MARK: - Header entries and element types

/// A header entry that passed every check: its data is `begin..<end` of the
/// data section and holds `count` elements of `dtype`.
private struct SafetensorsEntry {
    var name: String
    var dtype: SafetensorsDType
    var shape: [Int]
    var count: Int
    var begin: Int
    var end: Int
}

/// The element types we read; everything but F32 is converted to Float.
enum SafetensorsDType: String {
    case f32 = "F32", f64 = "F64", f16 = "F16", bf16 = "BF16"

    /// Bytes per element.
    var size: Int {
        switch self {
        case .f32: 4
        case .f64: 8
        case .f16, .bf16: 2
        }
    }
}

/// Element conversions; internal so that tests can check them directly.
enum SafetensorsDecode {
    /// `count` little-endian elements of `dtype` in `data` (which holds
    /// exactly `count * dtype.size` bytes, at any alignment), as Floats.
    static func values(_ data: UnsafeRawBufferPointer, dtype: SafetensorsDType, count: Int) -> [Float] {
        switch dtype {
        case .f32:
            #if _endian(little)
            // The common case is one copy.
            return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                if let destination = buffer.baseAddress, let source = data.baseAddress {
                    memcpy(destination, source, count * 4)
                }
                initialized = count
            }
            #else
            return (0..<count).map {
                Float(bitPattern: UInt32(littleEndian: data.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)))
            }
            #endif
        case .f64:
            // Values beyond Float's range become infinities, as in any narrowing cast.
            return (0..<count).map {
                Float(Double(bitPattern: UInt64(littleEndian: data.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self))))
            }
        case .f16:
            return (0..<count).map {
                floatFromHalf(UInt16(littleEndian: data.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)))
            }
        case .bf16:
            // bfloat16 is the upper half of a Float.
            return (0..<count).map {
                Float(bitPattern: UInt32(UInt16(littleEndian: data.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) << 16)
            }
        }
    }

    /// The IEEE 754 half-precision number with bits `half`, exactly, as a
    /// Float. Written out rather than using `Float16`, which is not available
    /// on every platform Swift runs on.
    ///
    /// ```
    /// half = sign(1) exponent(5) mantissa(10)
    /// normal:     (-1)^sign * 2^(exponent - 15) * 1.mantissa
    /// subnormal:  (-1)^sign * 2^-24 * mantissa          (exponent 0)
    /// ```
    static func floatFromHalf(_ half: UInt16) -> Float {
        let sign = UInt32(half & 0x8000) << 16
        let exponent = UInt32(half >> 10) & 0x1F
        let mantissa = UInt32(half & 0x3FF)
        switch exponent {
        case 0x1F:
            // Infinity or NaN: the all-ones exponent, the mantissa kept (and so the NaN payload).
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        case 0:
            let magnitude = Float(mantissa) * 0x1p-24
            return sign == 0 ? magnitude : -magnitude
        default:
            return Float(bitPattern: sign | ((exponent + 127 - 15) << 23) | (mantissa << 13))
        }
    }
}

// MARK: - JSON

private enum SafetensorsJSON {
    /// The value of a JSON integer as JSONSerialization returns it, or nil
    /// for anything else. JSONSerialization hands back NSNumber for numbers
    /// and booleans alike, and `as? Int` bridges `true` to 1 and `2.0` to 2
    /// (on Linux too), so the NSNumber's stored type is checked first.
    static func integer(_ value: Any) -> Int? {
        guard let number = value as? NSNumber else { return nil }
        // "c" is how booleans are stored, "d" and "f" floating point.
        let integerTypes: Set<String> = ["s", "S", "i", "I", "l", "L", "q", "Q"]
        guard integerTypes.contains(String(cString: number.objCType)) else { return nil }
        return number as? Int
    }

    /// A short JSON-like rendering of a parsed value, for error messages.
    static func render(_ value: Any) -> String {
        switch value {
        case let text as String:
            return quoted(text)
        case let number as NSNumber:
            if String(cString: number.objCType) == "c" { return number.boolValue ? "true" : "false" }
            return number.description
        case let array as [Any]:
            return "[" + array.map(render).joined(separator: ", ") + "]"
        case is [String: Any]:
            return "an object"
        case is NSNull:
            return "null"
        default:
            return "\(value)"
        }
    }

    /// `text` as a JSON string literal: quotes, backslashes and control
    /// characters escaped, everything else as UTF-8.
    static func quoted(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case "\u{08}": result += "\\b"
            case "\u{0C}": result += "\\f"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default:
                result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}
