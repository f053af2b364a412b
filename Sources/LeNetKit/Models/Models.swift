/// The ready-made networks.
public enum Models {
    /// The PyTorch tutorial's CIFAR-10 LeNet, widened:
    ///
    /// ```
    /// conv1 3→16 5×5, ReLU, pool 2   → 16×14×14
    /// conv2 16→32 5×5, ReLU, pool 2  → 32×5×5
    /// fc1 800→120, ReLU, fc2 120→84, ReLU, fc3 84→10
    /// ```
    /// 121,182 parameters with 10 classes (85 more or fewer a class), named
    /// as PyTorch's `state_dict()` names them. Initialized as PyTorch
    /// initializes these layers, from `seed`.
    ///
    /// The network pools before each convolution's ReLU: max-pooling and
    /// ReLU commute (max(relu(a), relu(b)) = relu(max(a, b)), and the
    /// gradient reaches the same input either way), so the outputs and
    /// gradients are those of `pool(relu(conv(x)))` while the ReLU touches a
    /// quarter of the values.
    /// - Parameters:
    ///   - seed: fixes the initial parameters.
    ///   - classes: fc3's outputs, 1 to 256 (CIFAR-10: 10; an image folder:
    ///     its class count).
    /// - Throws: `LeNetError` when `classes` is out of range or memory fails.
    public static func cifarLeNet(seed: UInt64 = 0, classes: Int = 10) throws -> Network {
        try Network(NetworkDescription.builtIn("cifar-lenet", classes: classes), seed: seed)
    }

    /// The CIFAR LeNet with a `BatchNorm2d` after each convolution (before
    /// its pool and ReLU): 96 more parameters and 96 running statistics.
    /// - Parameters:
    ///   - seed: fixes the initial parameters.
    ///   - classes: fc3's outputs, 1 to 256.
    /// - Throws: `LeNetError` when `classes` is out of range or memory fails.
    public static func cifarLeNetBN(seed: UInt64 = 0, classes: Int = 10) throws -> Network {
        try Network(NetworkDescription.builtIn("cifar-lenet-bn", classes: classes), seed: seed)
    }

    /// The class counts the models take: 1 to 256, as labels are bytes.
    static func checkClasses(_ classes: Int) throws {
        guard (1...256).contains(classes) else {
            throw LeNetError("must be 1 to 256, got \(classes)", subject: "classes")
        }
    }
}
