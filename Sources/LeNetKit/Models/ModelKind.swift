/// The networks `lenet` can build by name.
public enum ModelKind: String, CaseIterable, Sendable {
    /// The seed's CIFAR-10 LeNet: 3×32×32 in, 10 classes out.
    case cifarLeNet = "cifar-lenet"
    /// LeNet-5 of LeCun et al. 1998: 1×32×32 in (MNIST padded by 2), 10 classes out.
    case lenet5

    /// A freshly initialized network of this kind.
    /// - Parameters:
    ///   - seed: fixes the initial parameters.
    ///   - classes: the last layer's outputs, 1 to 256.
    /// - Throws: `LeNetError` when `classes` is out of range or its
    ///   parameters' memory cannot be had.
    public func make(seed: UInt64 = 0, classes: Int = 10) throws -> Network {
        switch self {
        case .cifarLeNet: return try Models.cifarLeNet(seed: seed, classes: classes)
        case .lenet5: return try Models.lenet5(seed: seed, classes: classes)
        }
    }

    /// The name of the last layer's bias, whose length is the class count:
    /// `fc3.bias` or `output.bias`.
    public var outputBiasName: String {
        switch self {
        case .cifarLeNet: return "fc3.bias"
        case .lenet5: return "output.bias"
        }
    }

    /// The model `lenet train` uses for a dataset when none is named: the
    /// seed's CIFAR LeNet for CIFAR-10 and image folders (photos are in
    /// colour), LeNet-5 for MNIST and Fashion-MNIST.
    public static func `default`(for dataset: DatasetKind) -> ModelKind {
        dataset == .cifar10 || dataset == .folder ? .cifarLeNet : .lenet5
    }

    /// The input this network takes, (C, H, W).
    public var inputShape: FeatureShape {
        switch self {
        case .cifarLeNet: return FeatureShape(channels: 3, height: 32, width: 32)
        case .lenet5: return FeatureShape(channels: 1, height: 32, width: 32)
        }
    }

    /// The model a checkpoint's tensor names belong to, for files without
    /// `model` metadata (a PyTorch `state_dict` saved as is).
    public static func guess(tensorNames: [String]) throws -> ModelKind? {
        let names = Set(tensorNames)
        return try allCases.first { kind in
            Set(try kind.make().parameters.entries.map(\.name)) == names
        }
    }
}
