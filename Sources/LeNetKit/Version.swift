public enum LeNetKitVersion { public static let string = "0.1.0" }
