import Foundation

/// A layer's configuration as a value: everything that makes the layer,
/// nothing it learns. A network description (`NetworkDescription`) is an
/// input shape and a list of these, and it round-trips through JSON, so a
/// checkpoint can carry the network that wrote it.
///
/// Its JSON object is its own fields plus `"type"`, in PyTorch's vocabulary
/// where PyTorch has the layer:
/// ```json
/// {"type": "Conv2d", "name": "conv1", "in_channels": 3, "out_channels": 16, "kernel_size": 5}
/// ```
/// A configuration written outside LeNetKit takes part once it is registered,
/// with the fields its JSON object may hold, in the `LayerRegistry` its
/// descriptions are read with.
///
/// A configuration is read only as part of a description, which checks the
/// `type` and refuses fields the type does not have; so LeNetKit's own are
/// `Encodable` alone, and a configuration from outside is `Decodable` for
/// its registry.
public protocol LayerConfiguration: Encodable, Sendable {
    /// The `type` this value is written as: `Conv2d`, `ReLU`.
    var type: String { get }
    /// The layer's name: the prefix of its parameter names (`conv1.weight`).
    var name: String { get }
    /// A new layer with this configuration, its parameters not yet bound,
    /// once every size and value is checked: there is no layer of a bad
    /// configuration.
    /// - Throws: `LayerFieldError` naming the field.
    func makeLayer() throws -> any Layer
}

/// A problem with one field of a layer's configuration: `NetworkDescription`
/// turns it into one line naming the layer and the field.
public struct LayerFieldError: Error, Sendable, Equatable {
    /// The JSON field, e.g. `kernel_size`.
    var field: String
    /// What was expected and what was found.
    var problem: String

    /// - Parameters:
    ///   - field: the JSON field, e.g. `kernel_size`.
    ///   - problem: what was expected and what was found: `must be at least 1, got 0`.
    public init(_ field: String, _ problem: String) {
        self.field = field
        self.problem = problem
    }
}

/// The largest size a description may give a channel count, a feature
/// count, an image side or a window: far beyond any LeNet, and small enough
/// that the products of a few of them cannot overflow before the memory
/// estimate refuses them.
let maximumLayerSize = 1 << 24

/// A configuration whose JSON fields are its `CodingKeys`: LeNetKit's own
/// layers, registered without naming the keys and checked by key. (Not
/// public, so that their keys stay out of the API: a layer from outside
/// names its fields when it is registered.)
protocol KeyedLayerConfiguration: LayerConfiguration {
    /// The fields its JSON object may hold besides `type`.
    associatedtype CodingKeys: CodingKey & CaseIterable
    /// Reads the fields (the registry has checked the type and refused
    /// unknown fields).
    init(decoding decoder: any Decoder) throws
    /// Checks every size and value; `makeLayer()` does this first.
    /// - Throws: `LayerFieldError` naming the field.
    func validate() throws
}

extension KeyedLayerConfiguration {
    /// Throws unless `value` is in `range`.
    func check(_ value: Int, _ field: CodingKeys, in range: ClosedRange<Int>) throws {
        guard range.contains(value) else {
            let expected = range.upperBound == maximumLayerSize && value < range.lowerBound
                ? "at least \(range.lowerBound)" : "in \(range.lowerBound)...\(range.upperBound)"
            throw LayerFieldError(field.stringValue, "must be \(expected), got \(value)")
        }
    }

    /// Throws unless `value` is a finite number in `range`.
    func check(_ value: Double, _ field: CodingKeys, in range: ClosedRange<Double>, open: Bool = false) throws {
        guard value.isFinite, range.contains(value), !open || value > range.lowerBound else {
            throw LayerFieldError(field.stringValue, "must be a number in \(open ? "(" : "[")\(range.lowerBound), \(range.upperBound)], got \(value)")
        }
    }
}

/// The layer types a description may name, and how to read each.
///
/// `standard` holds LeNetKit's layers. A layer written outside LeNetKit is
/// added with one line, and descriptions are read with the result:
/// ```swift
/// let registry = LayerRegistry.standard.registering(MyLayer.Configuration.self, as: "MyLayer",
///                                                   fields: MyLayer.Configuration.CodingKeys.self)
/// let description = try NetworkDescription(json: data, registry: registry)
/// ```
/// A registry is a value: adding to one changes no other, and nothing in
/// the process is shared.
public struct LayerRegistry: Sendable {
    struct Entry: Sendable {
        let fields: Set<String>
        let decode: @Sendable (any Decoder) throws -> any LayerConfiguration
    }
    private var entries: [String: Entry] = [:]

    /// No types.
    init() {}

    /// LeNetKit's own layers.
    public static let standard = LayerRegistry()
        .registering(Conv2D.Configuration.self, as: "Conv2d")
        .registering(Conv2D.Configuration.self, as: "PartialConv2d")
        .registering(MaxPool2D.Configuration.self, as: "MaxPool2d")
        .registering(ReLU.Configuration.self, as: "ReLU")
        .registering(Tanh.Configuration.self, as: "Tanh")
        .registering(Tanh.Configuration.self, as: "ScaledTanh")
        .registering(Flatten.Configuration.self, as: "Flatten")
        .registering(Linear.Configuration.self, as: "Linear")
        .registering(Subsampling.Configuration.self, as: "Subsampling")
        .registering(BatchNorm2D.Configuration.self, as: "BatchNorm2d")
        .registering(Dropout.Configuration.self, as: "Dropout")
        .registering(RBF.Configuration.self, as: "RBF")

    /// This registry with `type` read as `configuration` (replacing any
    /// type of that name).
    /// - Parameters:
    ///   - configuration: the configuration type a JSON object of this type decodes to.
    ///   - type: the JSON `type` that names it.
    ///   - fields: the fields its JSON object may hold besides `type`,
    ///     usually its `CodingKeys`: a description that gives it any other
    ///     is refused, naming the field.
    public func registering<C: LayerConfiguration & Decodable, Fields: CodingKey & CaseIterable>(
        _ configuration: C.Type, as type: String, fields: Fields.Type
    ) -> LayerRegistry {
        adding(type, fields: Fields.self) { try C(from: $0) }
    }

    /// `registering(_:as:fields:)` for LeNetKit's own, with their own keys.
    func registering<C: KeyedLayerConfiguration>(_ configuration: C.Type, as type: String) -> LayerRegistry {
        adding(type, fields: C.CodingKeys.self) { try C(decoding: $0) }
    }

    private func adding<Fields: CodingKey & CaseIterable>(
        _ type: String, fields: Fields.Type, decode: @escaping @Sendable (any Decoder) throws -> any LayerConfiguration
    ) -> LayerRegistry {
        var copy = self
        copy.entries[type] = Entry(fields: Set(Fields.allCases.map(\.stringValue)), decode: decode)
        return copy
    }

    /// The type names it reads, sorted.
    var types: [String] { entries.keys.sorted() }

    func entry(_ type: String) -> Entry? { entries[type] }

    /// Where a decoder finds the registry to read layers with.
    static let userInfoKey = CodingUserInfoKey(rawValue: "LeNetKit.LayerRegistry")
}

/// One layer of a description as JSON: the registry picks the type from
/// `"type"`, refuses fields the type does not have, and reads the rest.
struct CodedLayer: Codable, Sendable {
    let configuration: any LayerConfiguration

    init(_ configuration: any LayerConfiguration) { self.configuration = configuration }

    init(from decoder: any Decoder) throws {
        let index = decoder.codingPath.last?.intValue
        guard let container = try? decoder.container(keyedBy: FieldKey.self) else {
            throw DescriptionError(layer: index, name: nil, field: nil, problem: "must be an object, {\"type\": …, \"name\": …}")
        }
        let name = try? container.decode(String.self, forKey: FieldKey("name"))
        func failure(_ field: String?, _ problem: String) -> DescriptionError {
            DescriptionError(layer: index, name: name, field: field, problem: problem)
        }
        guard container.contains(FieldKey.type) else { throw failure("type", "missing") }
        guard let type = try? container.decode(String.self, forKey: FieldKey.type) else {
            throw failure("type", "must be a string")
        }
        let registry = LayerRegistry.userInfoKey.flatMap { decoder.userInfo[$0] as? LayerRegistry } ?? .standard
        guard let entry = registry.entry(type) else {
            throw failure("type", "unknown layer type '\(type)'; known: \(registry.types.joined(separator: ", "))")
        }
        for key in container.allKeys.map(\.stringValue).sorted() where key != "type" && !entry.fields.contains(key) {
            throw failure(key.isEmpty ? "\"\"" : key, "unknown field for a \(type) (its fields: \(entry.fields.sorted().joined(separator: ", ")))")
        }
        do {
            configuration = try entry.decode(decoder)
        } catch let error as LayerFieldError {
            throw failure(error.field, error.problem)
        } catch let error as DecodingError {
            let (field, problem) = DescriptionError.explain(error)
            throw failure(field, problem)
        }
        guard configuration.type == type else {
            throw failure("type", "'\(type)' does not fit these fields (they make a \(configuration.type))")
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: FieldKey.self)
        try container.encode(configuration.type, forKey: FieldKey.type)
        try configuration.encode(to: encoder)
    }
}

/// What is wrong with a description, where: the layer (by position and
/// name) and the field.
struct DescriptionError: Error {
    var layer: Int? = nil
    var name: String? = nil
    var field: String? = nil
    var problem: String

    /// "layer 3 'conv2': kernel_size: must be at least 1, got 0".
    var message: String {
        var parts: [String] = []
        if let layer { parts.append("layer \(layer + 1)" + (name.map { " '\($0)'" } ?? "")) }
        if let field { parts.append(field) }
        parts.append(problem)
        return parts.joined(separator: ": ")
    }

    /// A decoding error as (the field it is in, what is wrong).
    static func explain(_ error: DecodingError) -> (field: String?, problem: String) {
        func field(_ path: [any CodingKey]) -> String? {
            path.last(where: { $0.intValue == nil }).map(\.stringValue)
        }
        switch error {
        case let .keyNotFound(key, _):
            return (key.stringValue, "missing")
        case let .typeMismatch(type, context):
            return (field(context.codingPath), "must be \(Self.kind(of: type))")
        case let .valueNotFound(type, context):
            return (field(context.codingPath), "must be \(Self.kind(of: type)), got null")
        case let .dataCorrupted(context):
            return (field(context.codingPath), context.debugDescription)
        @unknown default:
            return (nil, "\(error)")
        }
    }

    private static func kind(of type: Any.Type) -> String {
        switch type {
        case is Int.Type: return "an integer"
        case is Double.Type, is Float.Type: return "a number"
        case is String.Type: return "a string"
        case is Bool.Type: return "true or false"
        case is [Int].Type: return "an array of integers"
        case is [[Int]].Type: return "an array of arrays of integers"
        default:
            let name = "\(type)"
            if name.hasPrefix("Dictionary") || name.hasPrefix("KeyedDecodingContainer") { return "an object" }
            if name.hasPrefix("Array") || name.hasPrefix("UnkeyedDecodingContainer") { return "an array" }
            return "a \(name)"
        }
    }
}

/// The `type` of the layer object being read: a configuration read under
/// two names (`Tanh` and `ScaledTanh`) takes its defaults from it.
/// Any field of a JSON object, by name: for reading the fields a type
/// does not declare (to refuse them) and the `type` every layer has.
struct FieldKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ name: String) { stringValue = name }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }

    /// A layer's `"type"`.
    static let type = FieldKey("type")
}

extension Decoder {
    /// The `"type"` field of the object being decoded, if any.
    var layerType: String? {
        (try? container(keyedBy: FieldKey.self)).flatMap { try? $0.decode(String.self, forKey: FieldKey.type) }
    }
}

extension KeyedDecodingContainer {
    /// An integer field. Foundation's decoder reports a fraction or an
    /// out-of-range number in an integer field as malformed JSON, with no
    /// field named; read as a number first, it is named here.
    func integer(_ key: Key) throws -> Int {
        if let number = try? decode(Double.self, forKey: key) {
            guard Self.isWhole(number) else {
                throw LayerFieldError(key.stringValue, "must be an integer, got \(number)")
            }
        }
        return try decode(Int.self, forKey: key)
    }

    /// A number an Int holds exactly: whole, and within a Double's exact integers.
    private static func isWhole(_ number: Double) -> Bool { number.rounded() == number && abs(number) <= 9.0e15 }

    /// An optional integer field (see `integer(_:)`).
    func integerIfPresent(_ key: Key) throws -> Int? {
        guard contains(key), (try? decodeNil(forKey: key)) != true else { return nil }
        return try integer(key)
    }

    /// An array of integers (see `integer(_:)`).
    func integers(_ key: Key) throws -> [Int] {
        if let numbers = try? decode([Double].self, forKey: key), let bad = numbers.first(where: { !Self.isWhole($0) }) {
            throw LayerFieldError(key.stringValue, "must hold integers, got \(bad)")
        }
        return try decode([Int].self, forKey: key)
    }

    /// An optional array of arrays of integers (see `integer(_:)`).
    func integerRowsIfPresent(_ key: Key) throws -> [[Int]]? {
        guard contains(key), (try? decodeNil(forKey: key)) != true else { return nil }
        if let rows = try? decode([[Double]].self, forKey: key),
           let bad = rows.joined().first(where: { !Self.isWhole($0) }) {
            throw LayerFieldError(key.stringValue, "must hold integers, got \(bad)")
        }
        return try decode([[Int]].self, forKey: key)
    }
}

extension KeyedDecodingContainer {
    /// A Float field, read as a Double and refused when it is beyond Float's range.
    func float(_ key: Key) throws -> Float {
        let number = try decode(Double.self, forKey: key)
        guard number.isFinite, abs(number) <= Double(Float.greatestFiniteMagnitude) else {
            throw LayerFieldError(key.stringValue, "must be a finite number, got \(number)")
        }
        return Float(number)
    }

    /// An optional Float field (see `float(_:)`).
    func floatIfPresent(_ key: Key) throws -> Float? {
        guard contains(key), (try? decodeNil(forKey: key)) != true else { return nil }
        return try float(key)
    }
}
