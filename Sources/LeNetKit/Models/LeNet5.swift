extension Models {
    /// LeNet-5 of LeCun, Bottou, Bengio and Haffner 1998, "Gradient-based
    /// learning applied to document recognition", section II-B, on 1×32×32 inputs:
    ///
    /// ```
    /// layer   kind                          output     parameters  connections
    /// c1      Conv2D 1→6 5×5                6@28×28           156      122,304
    /// s2      Subsampling 2×2 (w·Σ + b)     6@14×14            12        5,880
    /// c3      Conv2D 6→16 5×5 with a table,  16@10×10        1,516      151,600
    ///         Table I (60 of 96 map pairs)
    /// s4      Subsampling 2×2 (w·Σ + b)     16@5×5             32        2,000
    /// c5      Conv2D 16→120 5×5             120            48,120       48,120
    /// f6      Linear 120→84                 84             10,164       10,164
    /// output  Linear 84→10                  10                850          850
    /// total                                                60,850      340,918
    /// ```
    /// with the squashing function f(a) = 1.7159·tanh(2a/3) (`Tanh.lecun`)
    /// after c1, s2, c3, s4, c5 and f6. The paper says so for every unit "in
    /// layers up to F6" (its F6 paragraph), and LeCun's own LeNet-5 code (Lush's
    /// and EBLearn's `net-cscscf`) squashes C1 too; pass `squashC1: false` for
    /// the reading in which C1's maps feed S2 unsquashed.
    ///
    /// Two departures from the paper, both for the loss this library trains with:
    /// the output is a linear layer (850 parameters) trained with softmax
    /// cross-entropy, not the paper's Euclidean RBF units (840 fixed-then-trained
    /// centres, which bring the paper's total to 340,908 connections); and
    /// every layer is initialized by PyTorch's rule, uniform in ±1/√fan_in,
    /// rather than the paper's ±2.4/fan_in. C3's fan-in is each map's own:
    /// 3·25, 4·25 or 6·25. The masked entries of `c3.weight`, stored dense as
    /// (16, 6, 5, 5), are exactly 0.
    ///
    /// Layers are named `c1, s2, c3, s4, c5, f6, output` (parameters
    /// `c1.weight`, `c1.bias`, `s2.weight`, …); the activations `c1.tanh`, ….
    /// - Parameters:
    ///   - seed: fixes the initial parameters.
    ///   - squashC1: whether a `Tanh.lecun` follows c1 (the paper: yes).
    ///   - classes: the output layer's units, 1 to 256 (the paper: 10).
    /// - Throws: `LeNetError` when `classes` is out of range or memory fails.
    public static func lenet5(seed: UInt64 = 0, squashC1: Bool = true, classes: Int = 10) throws -> Network {
        try checkClasses(classes)
        // The store draws every tensor, C3's at the tensor-wide bound; C3
        // then draws again with each map's own fan-in, its missing
        // connections at 0 (`Conv2D.initialize(using:)`).
        return try Network(NetworkDescription.lenet5(classes: classes, squashesC1: squashC1), seed: seed)
    }
}
