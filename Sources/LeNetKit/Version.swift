/// LeNetKit's version, as `lenet --version` prints it.
public enum LeNetKitVersion { public static let string = "0.1.0" }
