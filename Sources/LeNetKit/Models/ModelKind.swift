/// The networks shipped in the library, by name (`NetworkDescription.builtIn`).
enum ModelKind: String, CaseIterable, Sendable {
    /// The PyTorch tutorial's CIFAR-10 LeNet, widened: 3×32×32 in, 10 classes out.
    case cifarLeNet = "cifar-lenet"
    /// The same with a BatchNorm2d after each convolution.
    case cifarLeNetBN = "cifar-lenet-bn"
    /// LeNet-5 of LeCun et al. 1998: 1×32×32 in (MNIST padded by 2), 10 classes out.
    case lenet5
    /// LeNet-5 as published, with the RBF output of the digits' drawings.
    case lenet5RBF = "lenet5-rbf"
    /// LeNet-1 of the same paper: 1×28×28 in.
    case lenet1
    /// LeNet-4 of the same paper: 1×32×32 in.
    case lenet4

    /// Its description with `classes` outputs.
    /// - Throws: `LeNetError` when `classes` is outside 1...256.
    func description(classes: Int = 10) throws -> NetworkDescription {
        try NetworkDescription.builtIn(rawValue, classes: classes)
    }

    /// A freshly initialized network of this kind.
    /// - Parameters:
    ///   - seed: fixes the initial parameters.
    ///   - classes: the last layer's outputs, 1 to 256.
    /// - Throws: `LeNetError` when `classes` is out of range or its
    ///   parameters' memory cannot be had.
    func make(seed: UInt64 = 0, classes: Int = 10) throws -> Network {
        try Network(description(classes: classes), seed: seed)
    }

    /// The model `lenet train` uses for a dataset when none is named: the
    /// CIFAR LeNet for CIFAR-10 and image folders (photos are in colour),
    /// LeNet-5 for MNIST and Fashion-MNIST.
    static func `default`(for dataset: DatasetKind) -> ModelKind {
        dataset == .cifar10 || dataset == .folder ? .cifarLeNet : .lenet5
    }

    /// The input this network takes, (C, H, W).
    var inputShape: FeatureShape {
        switch self {
        case .cifarLeNet, .cifarLeNetBN: return FeatureShape(channels: 3, height: 32, width: 32)
        case .lenet5, .lenet5RBF, .lenet4: return FeatureShape(channels: 1, height: 32, width: 32)
        case .lenet1: return FeatureShape(channels: 1, height: 28, width: 28)
        }
    }
}
