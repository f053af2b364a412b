import LeNetKit
print(LeNetKitVersion.string)
