/// The ready-made networks.
public enum Models {
    /// The seed's CIFAR-10 LeNet (the PyTorch tutorial network, widened):
    ///
    /// ```
    /// conv1 3→16 5×5, ReLU, pool 2   → 16×14×14
    /// conv2 16→32 5×5, ReLU, pool 2  → 32×5×5
    /// fc1 800→120, ReLU, fc2 120→84, ReLU, fc3 84→10
    /// ```
    /// 121,182 parameters, named as PyTorch's `state_dict()` names them.
    /// Initialized as PyTorch initializes these layers, from `seed`.
    ///
    /// The network pools before each convolution's ReLU: max-pooling and
    /// ReLU commute (max(relu(a), relu(b)) = relu(max(a, b)), and the
    /// gradient reaches the same input either way), so the outputs and
    /// gradients are those of `pool(relu(conv(x)))` while the ReLU touches a
    /// quarter of the values.
    public static func cifarLeNet(seed: UInt64 = 0) throws -> Network {
        let layers: [any Layer] = [
            Conv2D("conv1", inChannels: 3, outChannels: 16, kernelSize: 5), MaxPool2D("pool1"), ReLU("relu1"),
            Conv2D("conv2", inChannels: 16, outChannels: 32, kernelSize: 5), MaxPool2D("pool2"), ReLU("relu2"),
            Linear("fc1", inFeatures: 800, outFeatures: 120), ReLU("relu3"),
            Linear("fc2", inFeatures: 120, outFeatures: 84), ReLU("relu4"),
            Linear("fc3", inFeatures: 84, outFeatures: 10),
        ]
        // The layer chain is fixed and consistent: only memory can fail.
        let net = try Network(inputShape: FeatureShape(channels: 3, height: 32, width: 32), layers: layers)
        var rng = SeededGenerator(seed: seed)
        net.parameters.initialize(using: &rng)
        return net
    }
}
