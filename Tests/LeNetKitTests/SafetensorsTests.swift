import Foundation
import Testing
@_spi(CLI) @testable import LeNetKit

final class SafetensorsTests {
    private let directory: String

    init() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("SafetensorsTests-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    deinit {
        // Undo testUnwritableDirectoryThrows's chmod before removing.
        try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory)
        try? FileManager.default.removeItem(atPath: directory)
    }

    // MARK: Helpers

    /// A safetensors file from a header written out by hand: the 8-byte
    /// length (`declaredLength`, or the header's own), the header, the data.
    private func craft(_ header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) -> [UInt8] {
        let json = Array(header.utf8)
        return littleEndianBytes(declaredLength ?? UInt64(json.count)) + json + data
    }

    private func littleEndianBytes(_ value: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
    }

    private func littleEndianBytes(_ values: [Float]) -> [UInt8] {
        values.flatMap { value in (0..<4).map { UInt8(truncatingIfNeeded: value.bitPattern >> (8 * UInt32($0))) } }
    }

    /// Asserts that parsing `bytes` throws a LeNetError about `source` whose
    /// description contains every one of `fragments`.
    private func assertParseFails(
        _ bytes: [UInt8], mentions fragments: [String], source: String = "bad.safetensors",
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        do {
            let parsed = try SafetensorsFile.parse(bytes, source: source)
            Issue.record("expected an error mentioning \(fragments), parsed \(parsed.tensors.map(\.name))", sourceLocation: sourceLocation)
        } catch let error as LeNetError {
            #expect(error.subject == source, sourceLocation: sourceLocation)
            for fragment in fragments where !error.description.contains(fragment) {
                Issue.record("'\(error.description)' does not mention '\(fragment)'", sourceLocation: sourceLocation)
            }
        } catch {
            Issue.record("expected a LeNetError, got \(error)", sourceLocation: sourceLocation)
        }
    }

    /// Asserts that `body` throws a LeNetError whose description contains every one of `fragments`.
    private func assertThrows(
        mentioning fragments: [String], sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
    ) {
        do {
            try body()
            Issue.record("expected an error mentioning \(fragments)", sourceLocation: sourceLocation)
        } catch let error as LeNetError {
            for fragment in fragments where !error.description.contains(fragment) {
                Issue.record("'\(error.description)' does not mention '\(fragment)'", sourceLocation: sourceLocation)
            }
        } catch {
            Issue.record("expected a LeNetError, got \(error)", sourceLocation: sourceLocation)
        }
    }

    /// Compares tensors by bit pattern, so NaN, -0 and infinities count too.
    private func assertSameTensors(
        _ actual: [SafetensorsTensor], _ expected: [SafetensorsTensor],
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(actual.map(\.name) == expected.map(\.name), sourceLocation: sourceLocation)
        for (a, e) in zip(actual, expected) {
            #expect(a.shape == e.shape, "shape of \(e.name)", sourceLocation: sourceLocation)
            #expect(a.values.map(\.bitPattern) == e.values.map(\.bitPattern), "values of \(e.name)", sourceLocation: sourceLocation)
        }
    }

    private func directoryListing() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
    }

    private var sampleFile: SafetensorsFile {
        SafetensorsFile(tensors: [
            // (OC, C, KH, KW)
            SafetensorsTensor(name: "conv1.weight", shape: [2, 3, 2, 2], values: (0..<24).map { Float($0) * 0.25 - 3 }),
            SafetensorsTensor(name: "conv1.bias", shape: [2], values: [0.5, -0.5]),
            SafetensorsTensor(name: "step", shape: [], values: [42]),
            SafetensorsTensor(name: "empty", shape: [0, 4], values: []),
            SafetensorsTensor(name: "special", shape: [5],
                              values: [.infinity, -.infinity, -0.0, .leastNonzeroMagnitude, .nan]),
            SafetensorsTensor(name: "fc \"quoted\" \\ é 🙂", shape: [1, 1], values: [Float.pi]),
        ], metadata: [
            "format": "lenet",
            "epoch": "3",
            "note": "tab\there, newline\nthere, quote \" backslash \\ control \u{01} é",
        ])
    }

    // MARK: Round trips

    @Test func testRoundTripInMemory() throws {
        let original = sampleFile
        let parsed = try SafetensorsFile.parse(try original.encoded(), source: "memory")
        assertSameTensors(parsed.tensors, original.tensors)
        #expect(parsed.metadata == original.metadata)
        #expect(parsed["conv1.bias"]?.values == [0.5, -0.5])
        #expect(parsed["step"]?.shape == [])
        #expect(parsed["step"]?.values == [42])
        #expect(parsed["conv1.weight"]?.values[23] == 2.75)
        #expect(parsed["missing"] == nil)
    }

    @Test func testRoundTripThroughAFile() throws {
        let path = directory + "/model.safetensors"
        try sampleFile.write(path: path)
        let read = try SafetensorsFile.read(path: path)
        assertSameTensors(read.tensors, sampleFile.tensors)
        #expect(read.metadata == sampleFile.metadata)
        // The file holds exactly the encoded bytes.
        #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: path))) == sampleFile.encoded())
    }

    @Test func testEncodingIsReproducible() throws {
        // Dictionary order varies between runs; the bytes must not.
        let bytes = try sampleFile.encoded()
        for _ in 0..<5 { #expect(try sampleFile.encoded() == bytes) }
    }

    @Test func testLargeTensorRoundTrips() throws {
        // 125,000 floats: 500 KB of data, copied in one piece.
        let values = (0..<125_000).map { Float($0) * 0.001 - 60 }
        let original = SafetensorsFile(tensors: [SafetensorsTensor(name: "w", shape: [250, 500], values: values)])
        let path = directory + "/large.safetensors"
        try original.write(path: path)
        let read = try SafetensorsFile.read(path: path)
        #expect(read["w"]?.shape == [250, 500])
        #expect(read["w"]?.values == values)
    }

    // MARK: Exact bytes

    @Test func testExactBytesOfATinyFile() throws {
        let file = SafetensorsFile(tensors: [SafetensorsTensor(name: "a", shape: [2], values: [1.0, -2.0])])
        // 54 bytes of JSON, padded with 2 spaces to 56 = 0x38.
        let json = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        #expect(json.utf8.count == 54)
        let expected: [UInt8] = [0x38, 0, 0, 0, 0, 0, 0, 0]
            + Array(json.utf8) + [0x20, 0x20]
            + [0x00, 0x00, 0x80, 0x3F]  // 1.0 = 0x3F800000
            + [0x00, 0x00, 0x00, 0xC0]  // -2.0 = 0xC0000000
        #expect(try file.encoded() == expected)
    }

    @Test func testExactBytesWithMetadata() throws {
        let file = SafetensorsFile(tensors: [SafetensorsTensor(name: "a", shape: [2], values: [1.0, -2.0])],
                                   metadata: ["k": "v"])
        // 79 bytes of JSON, padded with 1 space to 80 = 0x50.
        let json = #"{"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        #expect(json.utf8.count == 79)
        let expected: [UInt8] = [0x50, 0, 0, 0, 0, 0, 0, 0]
            + Array(json.utf8) + [0x20]
            + [0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0]
        #expect(try file.encoded() == expected)
    }

    @Test func testExactBytesOfAnEmptyFile() throws {
        // "{}" padded with 6 spaces, no data.
        #expect(try SafetensorsFile(tensors: []).encoded() == [8, 0, 0, 0, 0, 0, 0, 0] + Array("{}      ".utf8))
        #expect(try SafetensorsFile.parse(try SafetensorsFile(tensors: []).encoded(), source: "empty").tensors == [])
    }

    @Test func testHeaderIsPaddedToAMultipleOf8() throws {
        for nameLength in 1...16 {
            let name = String(repeating: "x", count: nameLength)
            let bytes = try SafetensorsFile(tensors: [SafetensorsTensor(name: name, shape: [1], values: [7])]).encoded()
            let length = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
            #expect(length % 8 == 0, "name of \(nameLength) characters")
            #expect(bytes.count == 8 + length + 4)
            // The padding is spaces after the closing brace, and the data follows.
            let header = Array(bytes[8..<(8 + length)])
            let brace = try #require(header.lastIndex(of: UInt8(ascii: "}")))
            #expect(header.count - 1 - brace < 8)
            #expect(header[(brace + 1)...].allSatisfy { $0 == 0x20 })
            #expect(Array(bytes[(8 + length)...]) == littleEndianBytes([7]))
        }
    }

    @Test func testNamesAndMetadataAreEscaped() throws {
        let file = SafetensorsFile(tensors: [SafetensorsTensor(name: "a\"b\\c\nd\u{01}é", shape: [], values: [1])],
                                   metadata: ["tab\t": "bell\u{07}"])
        let bytes = try file.encoded()
        let length = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = try #require(String(bytes: bytes[8..<(8 + length)], encoding: .utf8))
        #expect(header.contains(#""a\"b\\c\nd\u0001é":{"#), "\(header)")
        #expect(header.contains(#"{"tab\t":"bell\u0007"}"#), "\(header)")
        let parsed = try SafetensorsFile.parse(bytes, source: "escaped")
        #expect(parsed.tensors.map(\.name) == ["a\"b\\c\nd\u{01}é"])
        #expect(parsed.metadata == ["tab\t": "bell\u{07}"])
    }

    // MARK: Reading what others write

    @Test func testReadsAFileWrittenByPython() throws {
        // Written by Scripts/make_safetensors_fixture.py with safetensors.numpy.save_file.
        let url = try #require(Bundle.module.url(forResource: "python-written", withExtension: "safetensors",
                                                  subdirectory: "Fixtures"))
        let file = try SafetensorsFile.read(path: url.path)
        // Python sorts by dtype size then name; we keep the data order.
        #expect(file.tensors.map(\.name) == ["double", "conv.bias", "conv.weight", "kernel4d", "step", "half"])
        #expect(file.metadata == ["format": "np", "source": "make_safetensors_fixture.py"])
        #expect(file["conv.weight"] == SafetensorsTensor(name: "conv.weight", shape: [2, 3],
                                                               values: [1.0, -2.5, 0.125, 3.0, 4.0, -0.0]))
        #expect(file["conv.weight"]?.values[5].sign == .minus)
        #expect(file["conv.bias"] == SafetensorsTensor(name: "conv.bias", shape: [2], values: [0.5, -0.5]))
        #expect(file["step"] == SafetensorsTensor(name: "step", shape: [], values: [7]))
        #expect(file["kernel4d"] == SafetensorsTensor(name: "kernel4d", shape: [1, 2, 1, 2],
                                                            values: [-1.5, -0.5, 0.5, 1.5]))
        #expect(file["double"] == SafetensorsTensor(name: "double", shape: [3], values: [0.25, -1.0, 1e10]))
        #expect(file["half"] == SafetensorsTensor(name: "half", shape: [3], values: [1.0, -2.0, 65504]))
    }

    @Test func testTensorsComeInDataOrder() throws {
        // The header lists "a" first, but "z" comes first in the data.
        let bytes = craft(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"#
            + #""z":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
            data: littleEndianBytes([1, 2]))
        let file = try SafetensorsFile.parse(bytes, source: "order")
        #expect(file.tensors == [SafetensorsTensor(name: "z", shape: [1], values: [1]),
                                      SafetensorsTensor(name: "a", shape: [1], values: [2])])
    }

    @Test func testAcceptsUncoveredTrailingBytesAndUnpaddedHeaders() throws {
        // An unpadded header (so the data is unaligned) and 3 bytes after the last tensor.
        let bytes = craft(#"{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}"#,
                          data: littleEndianBytes([-3.5]) + [9, 9, 9])
        #expect(try SafetensorsFile.parse(bytes, source: "trailing").tensors == [SafetensorsTensor(name: "a", shape: [], values: [-3.5])])
    }

    @Test func testIgnoresUnknownFieldsInAnEntry() throws {
        let bytes = craft(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":[1,{"x":null}]}}"#,
                          data: littleEndianBytes([5]))
        #expect(try SafetensorsFile.parse(bytes, source: "extra")["a"]?.values == [5])
    }

    @Test func testConvertsF64F16AndBF16ToFloat() throws {
        let f64: [Double] = [1.5, -0.25, 1e40]
        let f64Bytes = f64.flatMap { value in (0..<8).map { UInt8(truncatingIfNeeded: value.bitPattern >> (8 * UInt64($0))) } }
        // 1, -2, 65504 (largest half), 2^-24 (smallest subnormal), 2^-14 (smallest normal), infinity, -0
        let f16: [UInt16] = [0x3C00, 0xC000, 0x7BFF, 0x0001, 0x0400, 0x7C00, 0x8000]
        // 1, -3, 2^-133 (a Float subnormal)
        let bf16: [UInt16] = [0x3F80, 0xC040, 0x0001]
        let halfBytes = (f16 + bf16).flatMap { [UInt8(truncatingIfNeeded: $0), UInt8(truncatingIfNeeded: $0 >> 8)] }
        let bytes = craft(#"{"d":{"dtype":"F64","shape":[3],"data_offsets":[0,24]},"#
            + #""h":{"dtype":"F16","shape":[7],"data_offsets":[24,38]},"#
            + #""b":{"dtype":"BF16","shape":[1,3],"data_offsets":[38,44]}}"#,
            data: f64Bytes + halfBytes)
        let file = try SafetensorsFile.parse(bytes, source: "dtypes")
        #expect(file["d"]?.values == [1.5, -0.25, .infinity])
        #expect(file["h"]?.values == [1, -2, 65504, 0x1p-24, 0x1p-14, .infinity, -0.0])
        #expect(file["h"]?.values.last?.sign == .minus)
        #expect(file["b"]?.values == [1, -3, 0x1p-133])
        #expect(file["b"]?.shape == [1, 3])

        // Half NaN stays NaN.
        let nan = craft(#"{"n":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}}"#, data: [0x01, 0x7E])
        #expect(try SafetensorsFile.parse(nan, source: "nan")["n"]?.values.first?.isNaN == true)
    }

    @Test func testHalfConversionMatchesFloat16ForEveryBitPattern() throws {
        // Float16 is unavailable on Intel Macs.
        #if arch(arm64) || (os(Linux) && arch(x86_64))
        for bits in UInt16.min...UInt16.max {
            let ours = SafetensorsDecode.floatFromHalf(bits)
            let reference = Float(Float16(bitPattern: bits))
            if reference.isNaN {
                #expect(ours.isNaN, "0x\(String(bits, radix: 16))")
            } else if ours.bitPattern != reference.bitPattern {
                Issue.record("0x\(String(bits, radix: 16)): \(ours) != \(reference)")
                return
            }
        }
        #endif
    }

    // MARK: Reading errors

    @Test func testRejectsFilesShorterThan8Bytes() {
        assertParseFails([], mentions: ["0 bytes", "8-byte header length"])
        assertParseFails([1, 2, 3], mentions: ["3 bytes"])
    }

    @Test func testRejectsAHeaderLengthBeyondTheFile() {
        let bytes = littleEndianBytes(99_999_999_999) + [UInt8](repeating: 0x20, count: 1226)
        do {
            _ = try SafetensorsFile.parse(bytes, source: "model.safetensors")
            Issue.record("expected an error")
        } catch {
            #expect("\(error)" == "model.safetensors: header length 99999999999 exceeds the file size 1234")
        }
        assertParseFails(littleEndianBytes(UInt64.max), mentions: ["header length 18446744073709551615", "file size 8"])
        assertParseFails(craft("{}", declaredLength: 3), mentions: ["header length 3", "file size 10"])
    }

    @Test func testRejectsAHeaderLongerThan100MB() {
        // The file is long enough; the header is still refused.
        let length: UInt64 = 100_000_001
        let bytes = littleEndianBytes(length) + [UInt8](repeating: 0x20, count: Int(length))
        assertParseFails(bytes, mentions: ["header length 100000001", "100 MB"])
    }

    @Test func testRejectsAHeaderThatIsNotUTF8() {
        let bytes = craft(#"{"a"# + "\u{FFFD}" + #"":{}}"#).map { $0 == 0xEF ? 0xFF : $0 }
        assertParseFails(bytes, mentions: ["not valid UTF-8"])
    }

    @Test func testRejectsAHeaderThatIsNotJSON() {
        assertParseFails(craft(#"{"a": "#), mentions: ["not valid JSON"])
        assertParseFails(craft(""), mentions: ["not valid JSON"])
        assertParseFails(craft(#"{"a":1} trailing"#), mentions: ["not valid JSON"])
    }

    @Test func testRejectsAHeaderThatIsNotAnObject() {
        assertParseFails(craft("[1, 2]"), mentions: ["not a JSON object", "[1, 2]"])
        assertParseFails(craft("5"), mentions: ["not a JSON object"])
        assertParseFails(craft(#""text""#), mentions: ["not a JSON object"])
    }

    @Test func testRejectsAnEntryThatIsNotAnObject() {
        assertParseFails(craft(#"{"a":5}"#), mentions: ["tensor 'a' is not a JSON object"])
    }

    @Test func testRejectsMissingFields() {
        assertParseFails(craft(#"{"a":{"shape":[1],"data_offsets":[0,4]}}"#, data: littleEndianBytes([1])),
                         mentions: ["tensor 'a' has no dtype"])
        assertParseFails(craft(#"{"a":{"dtype":"F32","data_offsets":[0,4]}}"#, data: littleEndianBytes([1])),
                         mentions: ["tensor 'a' has no shape"])
        assertParseFails(craft(#"{"a":{"dtype":"F32","shape":[1]}}"#, data: littleEndianBytes([1])),
                         mentions: ["tensor 'a' has no data_offsets"])
    }

    @Test func testRejectsFieldsOfTheWrongType() {
        let data = littleEndianBytes([1])
        assertParseFails(craft(#"{"a":{"dtype":32,"shape":[1],"data_offsets":[0,4]}}"#, data: data),
                         mentions: ["tensor 'a' has dtype 32", "not a string"])
        assertParseFails(craft(#"{"a":{"dtype":"F32","shape":"1","data_offsets":[0,4]}}"#, data: data),
                         mentions: ["tensor 'a' has shape \"1\"", "not an array"])
        assertParseFails(craft(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":"0,4"}}"#, data: data),
                         mentions: ["tensor 'a' has data_offsets \"0,4\"", "[begin, end]"])
        assertParseFails(craft(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}"#, data: data),
                         mentions: ["data_offsets [0]"])
        assertParseFails(craft(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}"#, data: data),
                         mentions: ["data_offsets [0, 4, 8]"])
        assertParseFails(craft(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4.0]}}"#, data: data),
                         mentions: ["data_offsets [0, 4", "two non-negative integers"])
        assertParseFails(craft(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,4]}}"#, data: data),
                         mentions: ["data_offsets [-4, 4]"])
        assertParseFails(craft(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551615]}}"#, data: data),
                         mentions: ["data_offsets [0, 18446744073709551615]"])
    }

    @Test func testRejectsShapesThatAreNotNonNegativeIntegers() {
        // JSONSerialization gives NSNumber for all of these, and on Linux
        // `as? Int` would turn true into 1 and 2.0 into 2.
        for (shape, dataCount) in [("[-1]", 1), ("[1.5]", 1), ("[2.0]", 2), ("[true]", 1), ("[false]", 0),
                                   ("[null]", 1), ("[\"2\"]", 2), ("[1e0]", 1), ("[[1]]", 1)] {
            let bytes = craft(#"{"a":{"dtype":"F32","shape":"# + shape + #","data_offsets":[0,\#(4 * dataCount)]}}"#,
                              data: littleEndianBytes([Float](repeating: 1, count: dataCount)))
            assertParseFails(bytes, mentions: ["tensor 'a' has shape", "non-negative integers"])
        }
    }

    @Test func testRejectsShapesWithTooManyElements() {
        assertParseFails(craft(#"{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,4]}}"#,
                               data: littleEndianBytes([1])),
                         mentions: ["too many elements"])
        assertParseFails(craft(#"{"a":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,4]}}"#,
                               data: littleEndianBytes([1])),
                         mentions: ["non-negative integers"])
    }

    @Test func testRejectsUnsupportedDTypes() {
        assertParseFails(craft(#"{"x":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8)),
                         mentions: ["tensor 'x' has dtype I64; only F32 is supported"])
        assertParseFails(craft(#"{"x":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}}"#, data: littleEndianBytes([1])),
                         mentions: ["tensor 'x' has dtype f32"])
    }

    @Test func testRejectsOffsetsOutsideTheData() {
        assertParseFails(craft(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: littleEndianBytes([1])),
                         mentions: ["tensor 'a'", "data_offsets [0, 8]", "beyond the end of the data section (4 bytes)"])
        assertParseFails(craft(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}"#,
                               data: littleEndianBytes([1, 2, 3])),
                         mentions: ["data_offsets [8, 4]", "end is before its begin"])
    }

    @Test func testRejectsOffsetsThatDoNotMatchTheShape() {
        assertParseFails(craft(#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: littleEndianBytes([1, 2])),
                         mentions: ["tensor 'a' has shape [3]", "12 bytes", "span 8 bytes"])
        assertParseFails(craft(#"{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,8]}}"#, data: littleEndianBytes([1, 2])),
                         mentions: ["4 bytes as F16", "span 8 bytes"])
    }

    @Test func testRejectsOverlappingTensors() throws {
        let bytes = craft(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"#
            + #""b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
            data: littleEndianBytes([1, 2, 3]))
        assertParseFails(bytes, mentions: ["tensors 'a' and 'b' overlap", "[0, 8]", "[4, 12]"])
        // The same range twice.
        let twice = craft(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"#
            + #""b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
            data: littleEndianBytes([1]))
        assertParseFails(twice, mentions: ["tensors 'a' and 'b' overlap"])
        // Empty tensors cover no bytes, so they overlap nothing.
        let empty = craft(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"#
            + #""e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}"#,
            data: littleEndianBytes([1, 2]))
        #expect(try SafetensorsFile.parse(empty, source: "empty").tensors.map(\.name) == ["a", "e"])
    }

    @Test func testRejectsMetadataThatIsNotStrings() {
        assertParseFails(craft(#"{"__metadata__":{"epoch":3}}"#), mentions: ["__metadata__ value of 'epoch'", "not a string"])
        assertParseFails(craft(#"{"__metadata__":{"ok":"x","flag":true}}"#),
                         mentions: ["__metadata__ value of 'flag'", "true"])
        assertParseFails(craft(#"{"__metadata__":["a"]}"#), mentions: ["__metadata__ is not a JSON object"])
    }

    @Test func testReadErrorsNameTheFile() throws {
        let missing = directory + "/missing.safetensors"
        assertThrows(mentioning: [missing, "cannot open", "No such file"]) {
            _ = try SafetensorsFile.read(path: missing)
        }
        assertThrows(mentioning: [directory, "not a regular file"]) {
            _ = try SafetensorsFile.read(path: directory)
        }
        let short = directory + "/short.safetensors"
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: short))
        assertThrows(mentioning: [short + ": file is 3 bytes long"]) {
            _ = try SafetensorsFile.read(path: short)
        }
    }

    // MARK: Writing errors and atomicity

    @Test func testEncodingRejectsBadTensors() {
        let cases: [(SafetensorsTensor, [String])] = [
            (SafetensorsTensor(name: "w", shape: [2, 3], values: [1, 2, 3]), ["tensor 'w' has 3 values", "[2, 3]", "needs 6"]),
            (SafetensorsTensor(name: "s", shape: [], values: []), ["tensor 's' has 0 values", "needs 1"]),
            (SafetensorsTensor(name: "", shape: [1], values: [1]), ["empty name"]),
            (SafetensorsTensor(name: "__metadata__", shape: [1], values: [1]), ["'__metadata__'"]),
            (SafetensorsTensor(name: "n", shape: [-1], values: []), ["tensor 'n'", "negative dimension"]),
            (SafetensorsTensor(name: "big", shape: [Int.max, 2], values: []), ["too many elements"]),
        ]
        for (tensor, fragments) in cases {
            assertThrows(mentioning: fragments) { _ = try SafetensorsFile(tensors: [tensor]).encoded() }
        }
        let duplicate = SafetensorsFile(tensors: [SafetensorsTensor(name: "d", shape: [1], values: [1]),
                                                  SafetensorsTensor(name: "d", shape: [1], values: [2])])
        assertThrows(mentioning: ["two tensors are called 'd'"]) { _ = try duplicate.encoded() }
    }

    @Test func testWriteIntoAMissingDirectoryNamesThePath() {
        let path = directory + "/no/such/dir/model.safetensors"
        assertThrows(mentioning: [path, "No such file or directory"]) { try sampleFile.write(path: path) }
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func testFailedWriteLeavesTheOldFileIntact() throws {
        let path = directory + "/model.safetensors"
        try sampleFile.write(path: path)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))

        let broken = SafetensorsFile(tensors: [SafetensorsTensor(name: "w", shape: [4], values: [1, 2])])
        assertThrows(mentioning: [path, "tensor 'w' has 2 values"]) { try broken.write(path: path) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
        #expect(try directoryListing() == ["model.safetensors"])
    }

    @Test func testWriteReplacesAnExistingFile() throws {
        let path = directory + "/model.safetensors"
        try sampleFile.write(path: path)
        let replacement = SafetensorsFile(tensors: [SafetensorsTensor(name: "only", shape: [1], values: [9])])
        try replacement.write(path: path)
        #expect(try SafetensorsFile.read(path: path).tensors == replacement.tensors)
        #expect(try directoryListing() == ["model.safetensors"])
    }

    @Test func testNoTemporaryFilesAreLeftBehind() throws {
        // Success.
        try sampleFile.write(path: directory + "/a.safetensors")
        try sampleFile.write(path: directory + "/a.safetensors")
        #expect(try directoryListing() == ["a.safetensors"])

        // A failure after the temporary file was written: renaming a file
        // over a directory fails.
        try FileManager.default.createDirectory(atPath: directory + "/taken", withIntermediateDirectories: false)
        assertThrows(mentioning: [directory + "/taken", "cannot replace"]) {
            try sampleFile.write(path: directory + "/taken")
        }
        #expect(try directoryListing() == ["a.safetensors", "taken"])

        // A path that names a directory.
        assertThrows(mentioning: ["names a directory"]) { try sampleFile.write(path: directory + "/") }
        #expect(try directoryListing() == ["a.safetensors", "taken"])
    }

    // root ignores directory permissions.
    @Test(.disabled(if: geteuid() == 0, "running as root, which can write anywhere"))
    func testUnwritableDirectoryThrows() throws {
        try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: directory)
        let path = directory + "/model.safetensors"
        assertThrows(mentioning: [path, "Permission denied"]) { try sampleFile.write(path: path) }
    }
}
