/// The networks `lenet` can build by name.
public enum ModelKind: String, CaseIterable, Sendable {
    /// The seed's CIFAR-10 LeNet: 3×32×32 in, 10 classes out.
    case cifarLeNet = "cifar-lenet"

    /// A freshly initialized network of this kind.
    public func make(seed: UInt64 = 0) -> Network {
        switch self {
        case .cifarLeNet: return Models.cifarLeNet(seed: seed)
        }
    }

    /// The input this network takes, (C, H, W).
    public var inputShape: FeatureShape { make().inputShape }

    /// The model a checkpoint's tensor names belong to, for files without
    /// `model` metadata (a PyTorch `state_dict` saved as is).
    public static func guess(tensorNames: [String]) -> ModelKind? {
        let names = Set(tensorNames)
        return allCases.first { kind in
            Set(kind.make().parameters.entries.map(\.name)) == names
        }
    }
}
